"""`python -m server`: serve the API (API.md §2), or `create-admin` / `demo` from the shell, or `openapi`
(print the OpenAPI document without a server: the console generates its types from it).

Without a MongoDB URI the embedded SecantusDB runs as a child process under the data dir and is
stopped with the server. With `--processes N` the master binds the port, prepares the database
once, then forks N API processes that each open their own client; it forwards SIGTERM/SIGINT to
them, restarts one that crashes, and stops the embedded database last.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import shutil
import signal
import sys

from tornado.netutil import bind_sockets

from server.config import Settings, ensure_jwt_secret
from server.embedded import EmbeddedDatabase

log = logging.getLogger("branchline")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m server", description="Branchline API server")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--data-dir")
    parser.add_argument("--mongo-uri")
    parser.add_argument("--processes", type=int)
    sub = parser.add_subparsers(dest="command")
    admin = sub.add_parser("create-admin", help="create an administrator on the root organisation")
    admin.add_argument("--phone", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name")
    admin.add_argument("--mongo-uri", dest="admin_mongo_uri")
    admin.add_argument("--data-dir", dest="admin_data_dir")
    sub.add_parser("openapi", help="print the OpenAPI document (console/openapi.json is this output)")
    demo = sub.add_parser(
        "demo", help="fill an empty database with a demo organisation and print how to sign in",
        description="Fill an EMPTY database with a demo organisation (机关党委, five branches, 35 members, study "
                    "sessions, activities, announcements, a warning) and print the console address and the "
                    "phone and password of the administrator and of each branch secretary (organiser). "
                    "Passwords are new and random on every run, printed once, unless --password is given. "
                    "Refuses, with exit code 1 and nothing written, when the database already holds members. "
                    "Uses the embedded database under --data-dir (default ./var) unless --mongo-uri is given; "
                    "start the server on the same database afterwards.")
    demo.add_argument("--password", help="one password for every staff account (at least 10 characters)")
    # the same dests as create-admin: load_settings reads them for either subcommand
    demo.add_argument("--mongo-uri", dest="admin_mongo_uri", metavar="URI",
                      help="fill this MongoDB (database BRANCHLINE_DB_NAME) instead of the embedded one")
    demo.add_argument("--data-dir", dest="admin_data_dir", metavar="DIR",
                      help="the embedded database's directory, as for the server (default ./var)")
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace) -> Settings:
    from pathlib import Path

    data_dir = getattr(args, "admin_data_dir", None) or args.data_dir
    settings = Settings.from_env().with_overrides(
        host=args.host, port=args.port, data_dir=Path(data_dir) if data_dir else None,
        mongo_uri=getattr(args, "admin_mongo_uri", None) or args.mongo_uri, processes=args.processes)
    if settings.processes < 1:
        raise SystemExit("--processes must be at least 1")
    return settings


def start_database(settings: Settings) -> tuple[str, EmbeddedDatabase | None]:
    if settings.mongo_uri:
        return settings.mongo_uri, None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedDatabase(str(settings.data_dir / "db"), log_path=settings.data_dir / "secantusd.log",
                                restart_delay=float(os.environ.get("BRANCHLINE_EMBEDDED_RESTART_DELAY", "1")))
    return embedded.start(), embedded


def share_metrics_between_processes(settings: Settings) -> None:
    """With several API processes, prometheus_client keeps its samples in files that /metrics adds up.
    It reads the variable when first imported, so this runs before anything imports it."""
    if settings.processes == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = settings.data_dir / "metrics"
    shutil.rmtree(directory, ignore_errors=True)  # samples of a previous run's processes
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


async def prepare_database(settings: Settings, uri: str) -> None:
    from server.app import make_context
    from server.bootstrap import ensure_admin
    from server.db import create_indexes

    ctx = make_context(settings, uri)
    try:
        await create_indexes(ctx.db)
        if settings.bootstrap_admin_phone and settings.bootstrap_admin_password:
            await ensure_admin(ctx, settings.bootstrap_admin_phone, settings.bootstrap_admin_password,
                               settings.bootstrap_admin_name, settings.bootstrap_org_name)
    finally:
        await ctx.client.close()


def run_server(settings: Settings) -> int:
    if not settings.jwt_secret and settings.mongo_uri:
        log.warning("BRANCHLINE_JWT_SECRET is not set: using a secret kept in %s; every API host must share it",
                    settings.data_dir)
    settings = ensure_jwt_secret(settings)
    share_metrics_between_processes(settings)
    from server.app import serve

    uri, embedded = start_database(settings)
    try:
        asyncio.run(prepare_database(settings, uri))
        sockets = bind_sockets(settings.port, settings.host)
        log.info("listening on http://%s:%d with %d process(es)", settings.host, settings.port, settings.processes)
        if settings.processes == 1:
            asyncio.run(serve(settings, uri, sockets, create_schema=False))
            return 0
        return supervise(settings, uri, sockets)
    finally:
        if embedded is not None:
            embedded.stop()


def supervise(settings: Settings, uri: str, sockets) -> int:
    from server.app import serve

    children: dict[int, int] = {}
    stopping = False

    def fork_one(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # child: die with the master, serve, exit without running the master's cleanup
            code = 1
            try:
                ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                asyncio.run(serve(settings, uri, sockets, create_schema=False))
                code = 0
            except BaseException:
                log.exception("API process %d failed", slot)
            finally:
                os._exit(code)
        children[pid] = slot

    def forward(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for slot in range(settings.processes):
        fork_one(slot)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        slot = children.pop(pid, None)
        if slot is None:
            continue
        if not stopping and os.waitstatus_to_exitcode(status) != 0:
            log.warning("API process %d (pid %d) exited with %s; restarting", slot, pid,
                        os.waitstatus_to_exitcode(status))
            fork_one(slot)
    return 0


def create_admin(args: argparse.Namespace) -> int:
    from server.app import make_context
    from server.bootstrap import ensure_admin
    from server.db import create_indexes

    settings = load_settings(args)
    uri, embedded = start_database(settings)
    try:
        async def run() -> dict | None:
            ctx = make_context(settings, uri)
            try:
                await create_indexes(ctx.db)
                return await ensure_admin(ctx, args.phone, args.password, args.name or settings.bootstrap_admin_name,
                                          settings.bootstrap_org_name, only_if_none=False)
            finally:
                await ctx.client.close()

        doc = asyncio.run(run())
        print(f"administrator ready: member id {doc['_id']}" if doc else "administrator already exists")
        return 0
    finally:
        if embedded is not None:
            embedded.stop()


def print_openapi() -> int:
    import json

    from schemas import openapi
    from server.app import ROUTES

    # Indented, in the order /openapi.json serves, so that an API change is a readable diff of console/openapi.json.
    print(json.dumps(openapi.build(ROUTES), ensure_ascii=False, indent=2))
    return 0


def fill_demo(args: argparse.Namespace) -> int:
    from server.app import make_context
    from server.db import create_indexes
    from server.demo import DatabaseNotEmpty, fill

    if args.password is not None and not 10 <= len(args.password) <= 128:
        print("--password must be 10 to 128 characters", file=sys.stderr)
        return 2
    settings = load_settings(args)
    uri, embedded = start_database(settings)
    try:
        async def run():
            ctx = make_context(settings, uri)
            try:
                await create_indexes(ctx.db)
                return await fill(ctx, args.password)
            finally:
                await ctx.client.close()

        try:
            result = asyncio.run(run())
        except DatabaseNotEmpty as exc:
            print(f"demo refused: {exc}. It only fills an empty database; nothing was written. "
                  "Use another --data-dir (or --mongo-uri / BRANCHLINE_DB_NAME).", file=sys.stderr)
            return 1
    finally:
        if embedded is not None:
            embedded.stop()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    print(f"演示组织已创建 Demo organisation created: 机关党委, {result.branches} 个党支部, {result.members} 名党员.")
    if settings.mongo_uri:  # the URI itself is not printed: it may hold a password
        start = "python -m server with the same --mongo-uri"
    elif settings.data_dir == Settings().data_dir:
        start = "python -m server"
    else:
        start = f"python -m server --data-dir {settings.data_dir}"
    print(f"控制台 Console: http://{host}:{settings.port}/console/  (start the server first: {start})")
    print("登录 Sign in (phone + password):")
    for account in result.accounts:
        role = "管理员 admin    " if account.role == "admin" else "组织者 organiser"
        print(f"  {role}  {account.name}  {account.org_name}  手机号 phone {account.phone}  "
              f"密码 password {account.password}")
    print("组织者只看得到本支部 An organiser sees only their own branch.")
    print("未使用的邀请码 Unused invite codes (7 days, for binding in the mini-program): "
          + ", ".join(f"{name} {code}" for name, code in result.invites.items()))
    if args.password is None:
        print("密码只显示这一次 These passwords are shown only now; --password sets your own.")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("BRANCHLINE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "create-admin":
        return create_admin(args)
    if args.command == "openapi":
        return print_openapi()
    if args.command == "demo":
        return fill_demo(args)
    return run_server(load_settings(args))


if __name__ == "__main__":
    sys.exit(main())
