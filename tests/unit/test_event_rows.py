"""Event rows as the hot paths decode them (json and jsonb arrive from asyncpg as text)."""

from app.events.repository import decode


def test_json_columns_are_parsed_and_other_columns_kept() -> None:
    row = decode(
        {
            "title": '{"not": "parsed"}',
            "impact": '{"scope": "team", "financial_loss": 12.5}',
            "grading": None,
            "routing": '{"lead": "IT", "cooperating": ["OPS"]}',
            "steps": '[{"title": "call back"}]',
        }
    )
    assert row == {
        "title": '{"not": "parsed"}',
        "impact": {"scope": "team", "financial_loss": 12.5},
        "grading": None,
        "routing": {"lead": "IT", "cooperating": ["OPS"]},
        "steps": [{"title": "call back"}],
    }
