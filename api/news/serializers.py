"""Shapes of the news endpoints."""

from rest_framework import serializers

from api.notifications.fields import AwareDateTimeField

from .models import Post, PostAttachment, PostKind


class PostInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PostKind.choices, required=False, default=PostKind.NEWS)
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=10000, required=False, allow_blank=True, default="")
    residence = serializers.UUIDField(required=False, allow_null=True)
    building = serializers.UUIDField(required=False, allow_null=True)
    entrance = serializers.UUIDField(required=False, allow_null=True)
    project = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    publish_at = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text="Now when not given."
    )
    pinned = serializers.BooleanField(required=False, default=False)
    starts_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    ends_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    requires_acknowledgement = serializers.BooleanField(
        required=False, allow_null=True, default=None
    )


class AttachmentOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PostAttachment
        fields = ["id", "name", "content_type", "size", "created_at"]


class PostOutputSerializer(serializers.ModelSerializer):
    place = serializers.SerializerMethodField()
    pinned_now = serializers.BooleanField(read_only=True, default=False)
    acknowledged = serializers.BooleanField(
        read_only=True, default=False, help_text="The caller's household acknowledged it."
    )
    published = serializers.SerializerMethodField()
    attachments = AttachmentOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Post
        fields = [
            "id",
            "kind",
            "title",
            "body",
            "project",
            "residence",
            "building",
            "entrance",
            "place",
            "publish_at",
            "published",
            "pinned",
            "pinned_now",
            "starts_at",
            "ends_at",
            "requires_acknowledgement",
            "acknowledged",
            "attachments",
            "created_at",
            "updated_at",
        ]

    def get_place(self, obj) -> str:
        from .selectors import post_place_label

        return post_place_label(obj)

    def get_published(self, obj) -> bool:
        return obj.notified_at is not None


class AttachmentInputSerializer(serializers.Serializer):
    file = serializers.FileField()


class AcknowledgementOutputSerializer(serializers.Serializer):
    post = serializers.UUIDField(source="post_id")
    dwelling = serializers.UUIDField(source="dwelling_id")
    acknowledged_at = serializers.DateTimeField(source="created_at")


class HouseholdAckSerializer(serializers.Serializer):
    dwelling = serializers.UUIDField()
    reference = serializers.CharField()
    building = serializers.CharField()
    entrance = serializers.CharField()
    floor = serializers.IntegerField()
    door = serializers.CharField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField()


class AcknowledgementsSerializer(serializers.Serializer):
    households = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    missing = serializers.IntegerField()
    rows = HouseholdAckSerializer(many=True)
