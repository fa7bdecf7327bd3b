"""Conditional changes (RFC 9110 section 13.1.1): a resource's version is its strong `ETag`
(`"v3"`), and a change sent with `If-Match` naming another version answers 412
`precondition-failed` (issue 10 item 6). One definition for every versioned resource: events
and rectification orders."""

from app.core.errors import PreconditionFailed


def etag(version: int) -> str:
    """The strong ETag of a version: `"v3"`."""
    return f'"v{version}"'


def parse_if_match(header: str | None) -> frozenset[int] | None:
    """The versions an `If-Match` header accepts (RFC 9110: a list of strong ETags such as
    `"v3"`, or `*`); None when any version will do. Weak ETags never match."""
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    for tag in header.split(","):
        value = tag.strip()
        if value.startswith("W/"):
            continue
        value = value.strip('"').removeprefix("v")
        if value.isdigit() and len(value) < 10:
            versions.add(int(value))
    return frozenset(versions)


def check_if_match(header: str | None, version: int, *, what: str) -> None:
    """412 `precondition-failed` (with `current_version`) when `If-Match` does not accept
    `version` of the `what` (e.g. "order")."""
    expected = parse_if_match(header)
    if expected is not None and version not in expected:
        raise PreconditionFailed(
            f"The {what} is at version {version} (ETag {etag(version)})",
            current_version=version,
        )
