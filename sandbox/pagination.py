"""Cursor pages as the spec describes them: limit 1 to 100, order by created_at, exclusive after/before ids.

Order is (created_at, seq): seq is the autoincrement primary key, so objects created in the same second
still have one stable order, and every page is one query over a (parent, created_at, seq) index.
"""

from dataclasses import dataclass

from django.db.models import Q, QuerySet, Subquery

from .errors import bad_request


@dataclass(frozen=True)
class ListParams:
    limit: int = 20
    order: str = "desc"
    after: str | None = None
    before: str | None = None

    @classmethod
    def from_query(cls, query) -> "ListParams":
        raw_limit = query.get("limit")
        limit = 20
        if raw_limit not in (None, ""):
            try:
                limit = int(raw_limit)
            except ValueError:
                raise bad_request(
                    "Invalid type for 'limit': expected an integer, but got a string instead.",
                    param="limit",
                    code="invalid_type",
                ) from None
            if limit < 1:
                raise bad_request(
                    "Invalid 'limit': integer below minimum value. "
                    f"Expected a value >= 1, but got {limit} instead.",
                    param="limit",
                    code="integer_below_min_value",
                )
            if limit > 100:
                raise bad_request(
                    f"Invalid 'limit': integer above maximum value. Expected a value <= 100, "
                    f"but got {limit} instead.",
                    param="limit",
                    code="integer_above_max_value",
                )
        order = query.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise bad_request(
                f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
                param="order",
                code="invalid_value",
            )
        return cls(
            limit=limit, order=order, after=query.get("after") or None, before=query.get("before") or None
        )


def beyond(qs: QuerySet, object_id: str, later: bool) -> Q:
    """Rows strictly after (later) or before the cursor object, in (created_at, seq) order.

    The cursor's position comes from scalar subqueries, so a page stays one query; the bound on
    created_at alone lets the planner seek the (parent, created_at, seq) index instead of scanning.
    """
    cursor = qs.filter(public_id=object_id)
    created_at = Subquery(cursor.values("created_at")[:1])
    seq = Subquery(cursor.values("seq")[:1])
    if later:
        return Q(created_at__gte=created_at) & (Q(created_at__gt=created_at) | Q(seq__gt=seq))
    return Q(created_at__lte=created_at) & (Q(created_at__lt=created_at) | Q(seq__lt=seq))


def page(qs: QuerySet, params: ListParams) -> tuple[list, bool]:
    """One page of `qs` in list order, and whether more lie beyond it in the paging direction."""
    desc = params.order == "desc"
    filtered = qs
    if params.after:
        filtered = filtered.filter(beyond(qs, params.after, later=not desc))
    if params.before:
        filtered = filtered.filter(beyond(qs, params.before, later=desc))
    forward = ("-created_at", "-seq") if desc else ("created_at", "seq")
    backward = ("created_at", "seq") if desc else ("-created_at", "-seq")
    if params.before and not params.after:
        # Walk back from the `before` cursor, nearest first, then show the page in list order.
        rows = list(filtered.order_by(*backward)[: params.limit + 1])
        rows, has_more = rows[: params.limit][::-1], len(rows) > params.limit
    else:
        rows = list(filtered.order_by(*forward)[: params.limit + 1])
        rows, has_more = rows[: params.limit], len(rows) > params.limit
    if not rows:
        _check_cursors(qs, params)
    return rows, has_more


def _check_cursors(qs: QuerySet, params: ListParams) -> None:
    """An empty page may mean a cursor from another list: say so rather than answer an empty page."""
    for param, object_id in (("after", params.after), ("before", params.before)):
        if object_id and not qs.filter(public_id=object_id).exists():
            raise bad_request(
                f"Invalid '{param}': no object with id '{object_id}' in this list.", param=param
            )


def page_list(rows: list, params: ListParams, id_of) -> tuple[list, bool]:
    """A page of an already ordered, small in-memory list (ascending), with the same cursor rules."""
    ids = [id_of(row) for row in rows]
    for param, object_id in (("after", params.after), ("before", params.before)):
        if object_id and object_id not in ids:
            raise bad_request(
                f"Invalid '{param}': no object with id '{object_id}' in this list.", param=param
            )
    ordered = rows if params.order == "asc" else rows[::-1]
    ordered_ids = ids if params.order == "asc" else ids[::-1]
    start = ordered_ids.index(params.after) + 1 if params.after else 0
    end = ordered_ids.index(params.before) if params.before else len(ordered)
    window = ordered[start:end]
    if params.before and not params.after:
        return window[-params.limit :], len(window) > params.limit
    return window[: params.limit], len(window) > params.limit
