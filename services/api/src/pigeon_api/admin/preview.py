"""The policy of the preview frame: the message's HTML is an author's markup, shown in a
frame with `sandbox` (no scripts, its own opaque origin) and served with a policy that
allows no script, no request but images, and framing by the admin only.

Remote images (the open pixel is one) load only when the person asks: a preview must not
count as an open, and mail clients block them by default for the same reason.
"""

from __future__ import annotations

NO_REMOTE_IMAGES = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'none'"
)
REMOTE_IMAGES = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def preview_headers(*, remote_images: bool) -> dict[str, str]:
    return {
        "Content-Security-Policy": REMOTE_IMAGES if remote_images else NO_REMOTE_IMAGES,
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "no-referrer",
    }
