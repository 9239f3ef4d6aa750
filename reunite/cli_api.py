"""Service commands: ``serve``, ``users``, ``audit``, ``alerts``."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from reunite.cli_common import console, user_errors
from reunite.cli_pipeline import _settings, _workspace
from reunite.errors import InvalidOptionError

users_app = typer.Typer(
    help="User accounts of the API (roles: operator, supervisor, researcher, admin).",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="The audit log of every search, view and change.", no_args_is_help=True
)
alerts_app = typer.Typer(help="Alerts on open cases.", no_args_is_help=True)
out = Console()


@user_errors
def serve_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address (default: settings api_host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings api_port).")] = None,
    no_alerts: Annotated[
        bool, typer.Option("--no-alerts", help="Do not scan for alerts in this process.")
    ] = False,
) -> None:
    """Start the API (OpenAPI docs at /docs)."""
    import uvicorn

    from reunite.api.app import create_app

    settings = _settings(ctx)
    app = create_app(settings, scan_alerts=not no_alerts)
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
        server_header=False,
        access_log=False,  # query strings may carry a stream token; the audit log records access
    )


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    env = os.environ.get("REUNITE_NEW_PASSWORD")
    if env:
        return env
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        raise InvalidOptionError("the two passwords differ")
    return first


@users_app.command("add")
@user_errors
def users_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name (a-z, 0-9, . _ -).")],
    role: Annotated[str, typer.Option(help="operator, supervisor, researcher or admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add a user (the password is prompted for, or read from stdin / REUNITE_NEW_PASSWORD)."""
    from reunite.pipeline import accounts, audit

    password = _password(password_stdin)
    with _workspace(ctx) as ws:
        with ws.db.session() as session:
            user = accounts.add_user(session, username, password, role)
            name, role_name = user.username, user.role
        audit.record(
            ws.db, audit.Actor(None, "cli"), "user_add", params={"user": name, "role": role_name}
        )
    console.print(f"added {name} ({role_name})")


def _set_disabled(ctx: typer.Context, username: str, disabled: bool) -> None:
    from reunite.pipeline import accounts, audit

    with _workspace(ctx) as ws:
        with ws.db.session() as session:
            accounts.set_disabled(session, username, disabled)
        params = {"user": username, "disabled": disabled}
        audit.record(ws.db, audit.Actor(None, "cli"), "user_change", params=params)
    console.print(f"{username} {'disabled' if disabled else 'enabled'}")


@users_app.command("disable")
@user_errors
def users_disable(ctx: typer.Context, username: str) -> None:
    """Disable a user: their tokens stop working at once."""
    _set_disabled(ctx, username, True)


@users_app.command("enable")
@user_errors
def users_enable(ctx: typer.Context, username: str) -> None:
    _set_disabled(ctx, username, False)


@users_app.command("list")
@user_errors
def users_list(ctx: typer.Context) -> None:
    from sqlalchemy import select

    from reunite.pipeline.case_schema import User

    table = Table("user", "role", "disabled", "created")
    with _workspace(ctx) as ws, ws.db.session() as session:
        for u in session.scalars(select(User).order_by(User.username)):
            table.add_row(
                u.username, u.role, "yes" if u.disabled else "", f"{u.created_at:%Y-%m-%d %H:%M}"
            )
    out.print(table)


@audit_app.command("verify")
@user_errors
def audit_verify(ctx: typer.Context) -> None:
    """Check the hash chain of the audit log; exit 1 if any entry was edited or deleted."""
    from reunite.pipeline import audit

    with _workspace(ctx) as ws:
        count, problems = audit.verify(ws.db)
        seq, digest = audit.head(ws.db)
    for p in problems:
        console.print(f"[red]entry {p.seq} {p.problem}[/red]")
    if problems:
        console.print(f"audit log BROKEN: {len(problems)} problem(s) in {count} entries")
        raise typer.Exit(1)
    out.print(f"audit log intact: {count} entries; head {seq} {digest}")


@alerts_app.command("scan")
@user_errors
def alerts_scan(ctx: typer.Context) -> None:
    """Raise alerts for sightings ingested since the last scan (for cron, when no API runs)."""
    from reunite.pipeline import alerts
    from reunite.pipeline.search import active_model

    settings = _settings(ctx)
    with _workspace(ctx) as ws:
        if ws.active_version() is None:
            out.print("no index yet: nothing to scan")
            return
        total = 0
        while batch := alerts.scan(ws, active_model(ws), settings.retention_days):
            total += len(batch)
    out.print(f"{total} new alert(s)")
