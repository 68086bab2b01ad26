"""What the engine (or the web server in front of it) answers, and what the user reads.

Each answer is synthesized (``testing.synth``: Apache's stock HTML pages, the engine's faults)
and served to the real SDK over HTTP by the replay engine; the product runs through the CLI.
"""
import pytest
from ovirtsdk4 import Connection

from ovirt_backup_plugin.engine.faults import BACKUP_ROLE, RESTORE_ROLE
from ovirt_backup_plugin.testing import synth

PAGE_1 = synth.with_query(f"{synth.API}/vms", all_content="true", max="100", search="page 1")
DOWN = ("the engine is unavailable (HTTP 503); the web server in front of it answered: check "
        "that ovirt-engine is running (systemctl status ovirt-engine)")
NOT_AUTHORIZED = "[User is not authorized to perform this action.]"


def logins(server):
    return [r for r in server.received if r.path == synth.SSO_TOKEN_PATH]


def test_apache_answering_503_at_login_says_the_engine_is_down(tmp_path, demo, cli,
                                                                write_config, serve):
    demo.add_html_error("POST", synth.SSO_TOKEN_PATH, 503, times=None)
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
        tried = len(logins(server))
    assert code == 2
    assert f"logging in: {DOWN}" in out
    assert "isn't the expected JSON" not in out + err
    assert tried == 3                                     # transient: retried (retries = 2)


def test_apache_answering_503_during_the_run_says_the_engine_is_down(tmp_path, demo, cli,
                                                                      write_config, serve):
    demo.add_html_error("GET", PAGE_1, 503, times=None)
    demo.add_html_error("GET", synth.API, 503, times=None)        # the API root too
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        conn = Connection(url=server.url, username=server.username, password="replay-secret")
        try:                                   # what the SDK itself makes of the answer
            with pytest.raises(Exception, match="isn't the expected XML"):
                conn.system_service().vms_service().list(all_content=True, max=100,
                                                         search="page 1")
        finally:
            conn.close()
        code, out, err = cli("--config", cfg, "backup")
    assert code == 2
    assert f"listing VMs (page 1, max 100): {DOWN}" in out


def test_a_wrong_url_path_says_where_the_api_is(tmp_path, demo, cli, write_config, serve):
    wrong = "/ovirt-engine/apii"
    demo.add_html_error("GET", f"{wrong}/datacenters", 404, times=None)
    demo.add_html_error("GET", wrong, 404, times=None)
    with serve(tmp_path, demo) as server:
        base = server.url[:-len(synth.API)]
        cfg = write_config(tmp_path, base + wrong)
        code, out, err = cli("--config", cfg, "backup")
    assert code == 2
    assert (f"the web server at {base} answered HTTP 404 (not found): wrong URL path? The "
            f"API is at {base}/ovirt-engine/api (check [engine] url)") in out


def test_403_on_the_vms_says_which_role_a_backup_needs(tmp_path, demo, cli, write_config,
                                                       serve):
    demo.add_error("GET", PAGE_1, 403, detail=NOT_AUTHORIZED, times=None)
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
    assert code == 2
    assert (f"listing VMs (page 1, max 100): the engine refused it to 'admin@internal' "
            f"(HTTP 403: {NOT_AUTHORIZED}): {BACKUP_ROLE}") in out
    assert "ReadOnlyAdmin" in BACKUP_ROLE


def test_403_on_a_restore_says_which_role_a_restore_needs(tmp_path, demo, cli, write_config,
                                                          serve):
    with serve(tmp_path, demo, "ok.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
    refusing = synth.demo_engine()
    refusing.add_error("POST", "vms", 403, detail=NOT_AUTHORIZED, times=None)
    with serve(tmp_path, refusing, "refusing.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "restore", "web01", "--name-pattern",
                             "{name}-r", "--copies", "1")
    assert code != 0
    assert f"(HTTP 403: {NOT_AUTHORIZED}): {RESTORE_ROLE}" in out + err
    assert "CREATE_VM" in RESTORE_ROLE


def test_an_expired_session_logs_in_again_once_bounded(tmp_path, demo, cli, write_config,
                                                       serve):
    demo.add_error("GET", PAGE_1, 401, detail="Unauthorized", times=1)
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
        tried = len(logins(server))
    assert code == 0, (out, err)
    assert tried == 2                                     # ours: the SDK never logs in
    assert "6/6 VMs" in out


def test_a_session_refused_after_a_new_login_is_a_clear_error(tmp_path, demo, cli,
                                                             write_config, serve):
    demo.add_error("GET", PAGE_1, 401, detail="Unauthorized", times=None)
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
        tried = len(logins(server))
    assert code == 2
    assert ("refused the session of 'admin@internal' (HTTP 401) even after a new login"
            in out)
    assert tried == 2
