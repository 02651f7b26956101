"""A submitted response as one JSON row, and rows back into a record's ``Annotation``s.

The API's export streams these rows; ``exchange.pull_to_dataset`` (reading the store) and
``client.Client.pull`` (reading the export) both turn them into annotations here, so the two
pulls write the same records.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from datamill.records import Annotation, Record


def shown_response(response: Any, annotator: str, display_order: list[Any]) -> dict[str, Any]:
    """One response (a ``models.Response``) as a reviewer sees it."""
    return {
        "id": response.id,
        "annotator": annotator,
        "answers": response.answers,
        "seconds": response.seconds,
        "typing_seconds": response.typing_seconds,
        "paste_events": response.paste_events,
        "flags": response.flags,
        "display_order": display_order,
        "created_at": response.created_at.isoformat(),
    }


def response_row(
    response: Any, record_id: str, is_gold: bool, annotator: str, display_order: list[Any]
) -> dict[str, Any]:
    """One response as the export writes it: what a reviewer sees, with its record."""
    row = shown_response(response, annotator, display_order)
    return {"response_id": row.pop("id"), "record_id": record_id, **row, "gold": is_gold}


def as_annotations(
    project: str, rows: Iterable[dict[str, Any]], record: Record
) -> list[Annotation]:
    """One annotation per answered question of each row, leaving out responses already
    pulled into this record's lineage."""
    done = {a.metadata.get("response_id") for a in record.annotations if a.project == project}
    return [
        Annotation(
            annotator=row["annotator"],
            question=question,
            value=value,
            project=project,
            seconds=row["seconds"],
            created_at=row["created_at"],
            metadata={
                "response_id": row["response_id"],
                "flags": row["flags"],
                "display_order": row["display_order"],
                "typing_seconds": row["typing_seconds"],
                "paste_events": row["paste_events"],
                "gold": row["gold"],
            },
        )
        for row in rows
        if row["response_id"] not in done
        for question, value in row["answers"].items()
    ]
