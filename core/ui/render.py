"""Server-rendered HTML of the status page. Every value is escaped here, once.

The page needs no script to be read; ``static/ui.js`` only adds a live refresh and
confirmation prompts. Actions are plain POST forms carrying the CSRF token.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape
from typing import Any

import orjson

from .. import __version__
from .chart import render_chart
from .history import minute_of

HOURS = (1, 3, 12, 48)
RECORD_PREVIEW = 300


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(moment: float | None) -> str:
    if not moment:
        return "never"
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return f'<time datetime="{e(stamp)}">{e(stamp)}</time>'


def as_json(value: Any, limit: int | None = None) -> str:
    text = orjson.dumps(value, default=str).decode()
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return e(text)


def page(body: str, *, title: str = "connectord", session: bool = False, csrf: str = "") -> str:
    logout = (
        f'<form method="post" action="/ui/logout" class="inline">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<button type="submit">Log out</button></form>'
        if session
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title>"
        + (f'<meta name="csrf" content="{e(csrf)}">' if csrf else "")
        + '<link rel="icon" href="/ui/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/ui/static/ui.css">'
        '<script src="/ui/static/ui.js" defer></script></head><body>'
        f'<header><h1><a href="/ui/">connectord</a></h1><span class="muted">{e(__version__)}'
        f"</span>{logout}</header><main>{body}</main></body></html>"
    )


def status_page(data: dict[str, Any], *, csrf: str, notice: str = "", session: bool) -> str:
    hours = data["hours"]
    nav = " ".join(
        f'<a href="/ui/?hours={h}"{" aria-current=page" if h == hours else ""}>{h}h</a>'
        for h in HOURS
    )
    toolbar = (
        f'<div class="toolbar"><span>history: {nav}</span>'
        '<label><input type="checkbox" id="live" checked> refresh every 10 s</label>'
        f'<span class="muted">as of {when(data["generated_at"])}</span></div>'
    )
    notice_html = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    cards = "".join(card(c, hours, csrf) for c in data["connectors"])
    if not data["connectors"]:
        cards = "<p>No connectors are configured.</p>"
    return page(
        notice_html + toolbar + overview(data["connectors"]) + cards,
        title="connectord status",
        session=session,
        csrf=csrf,
    )


def _rate(entry: dict[str, Any], key: str) -> int:
    history = entry.get("history") or []
    return history[-1][key] if history else 0


def overview(connectors: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr><td><a href="#c-{e(c["name"])}">{e(c["name"])}</a></td>'
        f'<td><span class="badge {_badge(c)}">{e(c["health"])}</span></td>'
        f'<td class="num">{_rate(c, "in"):,}</td><td class="num">{_rate(c, "out"):,}</td>'
        f'<td class="num">{c.get("queue_depth", 0):,}</td>'
        f'<td class="num">{c.get("dead_letter_count", 0):,}</td></tr>'
        for c in connectors
    )
    return (
        '<table class="overview"><thead><tr><th>connector</th><th>health</th>'
        "<th>in/min</th><th>out/min</th><th>queued</th><th>dead letters</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _badge(entry: dict[str, Any]) -> str:
    return {"ok": "ok", "disabled": "off", "starting": "warn", "retrying": "warn"}.get(
        entry["health"], "bad"
    )


def card(c: dict[str, Any], hours: float, csrf: str) -> str:
    name = c["name"]
    flow = "".join(
        f'<li class="{kind}" title="{kind}">{e(p["type"])}</li>'
        for kind, p in [
            ("source", c["source"]),
            *(("mapping", m) for m in c["mappings"]),
            ("destination", c["destination"]),
        ]
    )
    options = as_json(
        {"source": c["source"], "mappings": c["mappings"], "destination": c["destination"]}
    )
    chart = render_chart(
        c.get("history", []), hours, minute_of(time.time()), f"records per minute for {name}"
    )
    return (
        f'<section class="card" id="c-{e(name)}" data-connector="{e(name)}">'
        f'<h2>{e(name)} <span class="badge {_badge(c)}">{e(c["health"])}</span> '
        f'<span class="muted">{e(c["mode"])}'
        f"{(' · ' + e(c['schedule'])) if c.get('schedule') else ''}</span></h2>"
        f'<ol class="flow">{flow}</ol>'
        f"<details><summary>options (secrets masked)</summary><pre>{options}</pre></details>"
        f"{figures(c)}{chart}{runs(c, csrf)}{dead_letters(c, csrf)}</section>"
    )


def figures(c: dict[str, Any]) -> str:
    counts = c.get("counts") or {}
    items = [
        ("received", f"{counts.get('received', 0):,}"),
        ("delivered", f"{counts.get('delivered', 0):,}"),
        ("queue depth", f"{c.get('queue_depth', 0):,}"),
        ("dead letters", f"{c.get('dead_letter_count', 0):,}"),
        ("last delivery", when(counts.get("last_delivered_at"))),
        ("checkpoint", f"<code>{as_json(c.get('checkpoint'), 400)}</code>"),
    ]
    html = "".join(
        f'<div data-figure="{e(k)}"><dt>{e(k)}</dt><dd>{v if k in _RAW else e(v)}</dd></div>'
        for k, v in items
    )
    error = c.get("last_error")
    error_html = f'<p class="error"><strong>last error:</strong> {e(error)}</p>' if error else ""
    return f'<dl class="figures">{html}</dl>{error_html}'


_RAW = frozenset({"last delivery", "checkpoint"})


def _form(action: str, label: str, csrf: str, *, confirm: str = "", extra: str = "") -> str:
    prompt = f' data-confirm="{e(confirm)}"' if confirm else ""
    return (
        f'<form method="post" action="{e(action)}" class="inline"{prompt}>'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">{extra}'
        f'<button type="submit">{e(label)}</button></form>'
    )


def runs(c: dict[str, Any], csrf: str) -> str:
    name = c["name"]
    if c["mode"] == "push":
        return '<p class="muted">Push connector: queued records are delivered continuously.</p>'
    button = (
        _form(f"/ui/connectors/{name}/sync", "Run now", csrf)
        if c["enabled"] and c["running"]
        else ""
    )
    rows = "".join(
        f"<tr><td>{r['id']}</td><td>{e(r['kind'])}</td><td>{when(r['started_at'])}</td>"
        f'<td class="num">{r["seconds"]:.1f} s</td>'
        f'<td><span class="run-{e(r["status"])}">{e(r["status"])}</span></td>'
        f'<td class="num">{r["records_in"]:,}</td><td class="num">{r["records_out"]:,}</td>'
        f'<td class="num">{r["rejected"]:,}</td><td>{e(r.get("error") or "")}</td></tr>'
        for r in c.get("runs", [])
    )
    table = (
        "<table><thead><tr><th>run</th><th>kind</th><th>started</th><th>took</th>"
        "<th>outcome</th><th>in</th><th>out</th><th>rejected</th><th>error</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else '<p class="muted">No runs yet.</p>'
    )
    return f"<h3>Last runs {button}</h3>{table}"


def dead_letters(c: dict[str, Any], csrf: str) -> str:
    name, total = c["name"], c.get("dead_letter_count", 0)
    if not total:
        return '<h3>Dead letters</h3><p class="muted">None.</p>'
    base = f"/ui/connectors/{name}/dead-letters"
    buttons = _form(f"{base}/replay", f"Replay all {total}", csrf) + _form(
        f"{base}/purge",
        f"Purge all {total}",
        csrf,
        confirm=f"Delete all {total} dead letters of {name}? They cannot be recovered.",
    )
    rows = "".join(
        f'<tr data-dead-letter="{d["id"]}"><td>{d["id"]}</td><td>{when(d["created_at"])}</td>'
        f'<td>{e(d["stage"])}</td><td class="reason">{e(d["reason"])}</td>'
        f"<td><code>{as_json(d['record'], RECORD_PREVIEW)}</code></td><td>"
        + _form(f"{base}/replay", "Replay", csrf, extra=_id(d["id"]))
        + _form(
            f"{base}/purge",
            "Purge",
            csrf,
            extra=_id(d["id"]),
            confirm=f"Delete dead letter #{d['id']}? It cannot be recovered.",
        )
        + "</td></tr>"
        for d in c.get("dead_letters", [])
    )
    shown = len(c.get("dead_letters", []))
    more = f'<p class="muted">Showing the first {shown} of {total}.</p>' if total > shown else ""
    return (
        f"<h3>Dead letters ({total:,}) {buttons}</h3>"
        "<table><thead><tr><th>#</th><th>when</th><th>stage</th><th>reason</th>"
        f"<th>record</th><th></th></tr></thead><tbody>{rows}</tbody></table>{more}"
    )


def _id(value: int) -> str:
    return f'<input type="hidden" name="id" value="{int(value)}">'


def login_page(*, error: str = "", configured: bool) -> str:
    if not configured:
        body = (
            '<section class="card"><h2>Status page locked</h2><p>This request does not come '
            "from loopback, and no <code>[daemon] admin_token</code> is configured, so the "
            "status page is not served here. Set <code>admin_token</code> (or "
            "<code>admin_token_file</code>) and restart, or open the page on the daemon's "
            "machine through 127.0.0.1.</p></section>"
        )
        return page(body, title="connectord: locked")
    message = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = (
        f'<section class="card login"><h2>Log in</h2>{message}'
        '<form method="post" action="/ui/login">'
        '<label for="token">Admin token (<code>[daemon] admin_token</code>)</label>'
        '<input type="password" id="token" name="token" autocomplete="current-password" '
        'required autofocus> <button type="submit">Log in</button></form></section>'
    )
    return page(body, title="connectord: log in")
