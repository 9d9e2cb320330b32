"""A renderer for file downloads, so a client asking for the file's type is not refused."""

import json

from rest_framework.renderers import BaseRenderer


class FileRenderer(BaseRenderer):
    """Accepts any file type in content negotiation; files are returned as they are, and an
    error raised before the file is read is written as JSON."""

    media_type = "*/*"
    format = "file"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | bytearray):
            return data
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return json.dumps(data, default=str).encode()
