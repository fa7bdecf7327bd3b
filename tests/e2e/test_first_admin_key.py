"""Issue 15 item 7: the first admin key goes to the person who started `serve` and is never
written to a stream that may be collected as logs: standard error (the JSON log, with the
embedded PostgreSQL's own lines folded in), even at DEBUG, nor standard output when it is not a
terminal (a pipe here, as in a container): then the key is in `APP_DATA_DIR/first-admin-key`
(mode 0600) and standard output names the file. A real `python -m app serve` on a fresh data
folder; the test stops everything it started."""

import httpx

from tests.e2e.processes import (
    Service,
    postgres_processes,
    scratch_dir,
    service_env,
    stop_postgres_in,
)


def test_first_admin_key_is_in_its_file_and_never_in_the_log() -> None:
    with scratch_dir("cle-first-key-") as folder:
        data = folder / "data"
        env = service_env(APP_DATA_DIR=str(data), LOG_LEVEL="DEBUG")
        service = Service(env, folder / "serve.log")
        try:
            service.wait_ready()
            token = service.token
            assert token is not None
            assert token.startswith("cle_")
            me = service.base + "/v1/me"
            assert httpx.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert httpx.get(me, headers={"Authorization": f"Bearer {token}x"}).status_code == 401
            assert service.terminate() == 0
        finally:
            service.close()
            stop_postgres_in(data / "pg")
        log = (folder / "serve.log").read_text(errors="replace")
        assert '"event":"request"' in log  # the log was written, at DEBUG
        assert token not in log
        assert [line for line in service.lines if token in line] == []
        assert (data / "first-admin-key").read_text().strip() == token
        assert not postgres_processes(data / "pg")
