from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from .models import Post, PostAcknowledgement, PostAttachment


class AttachmentInline(TabularInline):
    model = PostAttachment
    extra = 0
    fields = ["name", "content_type", "size", "file"]
    readonly_fields = ["content_type", "size"]


@admin.register(Post)
class PostAdmin(ModelAdmin):
    list_display = ["title", "kind", "publish_at", "pinned", "notified_at"]
    list_filter = ["kind", "pinned"]
    search_fields = ["title", "project"]
    raw_id_fields = ["residence", "building", "entrance", "author", "organisation"]
    readonly_fields = ["notified_at"]
    inlines = [AttachmentInline]


@admin.register(PostAcknowledgement)
class PostAcknowledgementAdmin(ModelAdmin):
    list_display = ["post", "dwelling", "person", "created_at"]
    raw_id_fields = ["post", "dwelling", "person", "on_behalf_of"]
