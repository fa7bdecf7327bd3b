"""What every domain's routes answer the same way (RFC 9110)."""

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from pydantic import BaseModel

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Creation:
    """A POST to a collection that creates one resource (RFC 9110 section 10.2.2): its
    `Location` is the collection's path and the new resource's key."""

    request: Request
    response: Response

    def __call__(self, resource: T, key: str = "id") -> T:
        """`resource`, with the `Location` header naming it by its `key` attribute."""
        collection: Any = self.request.scope["route"].path
        self.response.headers["Location"] = f"{collection}/{getattr(resource, key)}"
        return resource


Created = Annotated[Creation, Depends(Creation)]


M = TypeVar("M", bound=BaseModel)


def from_row(schema: type[M], row: object, **computed: Any) -> M:
    """The response `schema` of a row: each field from the row's attribute of that name,
    unless `computed` gives it."""
    fields = schema.model_fields
    return schema.model_validate(
        {name: computed[name] if name in computed else getattr(row, name) for name in fields}
    )
