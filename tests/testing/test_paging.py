"""paginate: cursor, offset and page-number paging from one list."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from connectord.testing import VendorEmulator, decode_cursor, encode_cursor, json_response, paginate

ITEMS = list(range(25))


def test_cursor_walk_visits_every_item_once():
    seen, cursor, pages = [], None, 0
    while True:
        page = paginate(ITEMS, cursor=cursor, limit=10)
        seen += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ITEMS
    assert pages == 3


def test_offset_and_page_number_agree():
    by_offset = paginate(ITEMS, offset="20", limit="10")
    by_page = paginate(ITEMS, page="3", limit="10")
    assert by_offset == by_page
    assert by_page.items == [20, 21, 22, 23, 24]
    assert (by_page.number, by_page.has_more, by_page.next_page, by_page.next_offset) == (
        3,
        False,
        None,
        None,
    )


def test_first_page_by_default():
    page = paginate(ITEMS, default_limit=4)
    assert page.items == [0, 1, 2, 3]
    assert (page.next_offset, page.next_page) == (4, 2)
    assert decode_cursor(page.next_cursor) == 4


def test_empty_list_has_one_empty_page():
    page = paginate([], limit=10)
    assert (page.items, page.has_more, page.next_cursor) == ([], False, None)


def test_cursor_is_opaque_and_round_trips():
    token = encode_cursor(1234)
    assert "1234" not in token
    assert decode_cursor(token) == 1234


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cursor": "not-a-cursor"}, "invalid cursor"),
        ({"cursor": encode_cursor(0)[:-2] + "!!"}, "invalid cursor"),
        ({"offset": "-1"}, "offset must be at least 0"),
        ({"page": "0"}, "page must be at least 1"),
        ({"limit": "ten"}, "limit must be an integer"),
        ({"limit": 500, "max_limit": 100}, "limit must be at most 100"),
        ({"offset": 1, "page": 2}, "pass only one of offset, page"),
    ],
)
def test_bad_positions_are_a_400_with_a_message(kwargs, message):
    with pytest.raises(web.HTTPBadRequest) as caught:
        paginate(ITEMS, **kwargs)
    assert message in caught.value.text
    assert caught.value.content_type == "application/json"


class Catalog(VendorEmulator):
    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/items", self.items)

    async def items(self, request: web.Request) -> web.Response:
        page = paginate(
            ITEMS,
            cursor=request.query.get("cursor"),
            limit=request.query.get("limit"),
            max_limit=10,
        )
        return json_response({"data": page.items, "next": page.next_cursor})


async def test_an_emulator_pages_over_http(emulator_server):
    server = emulator_server(Catalog())
    seen, params = [], {"limit": "10"}
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(server.url + "/items", params=params) as response:
                body = await response.json()
            seen += body["data"]
            if body["next"] is None:
                break
            params = {"limit": "10", "cursor": body["next"]}
        async with session.get(server.url + "/items", params={"cursor": "garbage"}) as response:
            assert response.status == 400
            assert (await response.json())["message"] == "invalid cursor 'garbage'"
    assert seen == ITEMS
