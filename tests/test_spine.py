"""Backup → list → restore end to end: the CLI, the real SDK over HTTP, a replay engine."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from lxml import etree

from ovirt_backup_plugin.ovf import ovf_hash, parse_ovf
from ovirt_backup_plugin.testing import synth

PASSWORD = "replay-secret"
SSO = Path(__file__).resolve().parent.parent / "cassettes" / "sso.yaml"


def test_backup_list_restore_two_copies(tmp_path, demo, cli, listed, write_config, serve, posted_vms):
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "backup")
        assert code == 0, out
        assert "6/6 VMs" in out and "localdb ok (6 written, 6 new)" in out

        items = listed(cfg)
        assert sorted(items) == sorted(vm.name for vm in demo.vms)
        web01 = next(vm for vm in demo.vms if vm.name == "web01")
        assert items["web01"]["vm_id"] == web01.id
        assert items["web01"]["datacenter"] == "Production"
        assert items["web01"]["cluster"] == "prod-a"
        assert items["web01"]["ovf_hash"] == ovf_hash(web01.ovf)

        code, out, _ = cli("--config", cfg, "restore", "web01", "--copies", "2")
        assert code == 0, out
        assert "restored web01-1" in out and "restored web01-2" in out
        assert "re-attaches only disks that still exist" in out

    bodies = posted_vms(server)
    assert sorted(b.findtext("name") for b in bodies) == ["web01-1", "web01-2"]   # in parallel
    for body in bodies:
        assert body.findtext("cluster/name") == "prod-a"
        assert body.findtext("initialization/regenerate_ids") == "true"
        assert body.findtext("initialization/configuration/type") == "ovf"
        # copies into the engine they were backed up from come with their NICs unplugged
        # (their guests carry the original's addresses); otherwise the OVF as stored
        sent = body.findtext("initialization/configuration/data")
        assert parse_ovf(sent) == parse_ovf(web01.ovf)
        nics = [i for i in etree.fromstring(sent.encode()).iter("Item")
                if i.findtext(f"{{{synth.RASD_NS}}}ResourceType") == "10"]
        assert len(nics) == 2
        assert [(n.findtext("IsPlugged"), n.findtext(f"{{{synth.RASD_NS}}}Linked"))
                for n in nics] == [("false", "false")] * 2


def test_single_restore_keeps_name_and_ids_and_cluster_can_be_chosen(tmp_path, cli, write_config, serve, posted_vms):
    eng = synth.demo_engine()
    eng._extra.clear()
    eng.add_restore("db01", cluster="prod-a")
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
        code, out, _ = cli("--config", cfg, "restore", "db01", "--cluster", "prod-a")
        assert code == 0, out
    (body,) = posted_vms(server)
    assert body.findtext("name") == "db01"
    assert body.findtext("cluster/name") == "prod-a"
    assert body.findtext("initialization/regenerate_ids") == "false"


def test_name_pattern_and_restore_by_id(tmp_path, demo, cli, write_config, serve, posted_vms):
    web01 = next(vm for vm in demo.vms if vm.name == "web01")
    demo._extra.clear()
    for n in (1, 2):
        demo.add_restore(f"clone{n}-of-web01", cluster="prod-a", of=web01)
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        cli("--config", cfg, "backup")
        code, out, _ = cli("--config", cfg, "restore", web01.id, "--copies", "2",
                           "--name-pattern", "clone{n}-of-{name}")
        assert code == 0, out
    assert sorted(b.findtext("name") for b in posted_vms(server)) == ["clone1-of-web01",
                                                                      "clone2-of-web01"]
    assert out.index("restored clone1-of-web01") < out.index("restored clone2-of-web01")


def test_copies_without_n_in_the_pattern_are_refused(tmp_path, demo, cli, write_config, serve, posted_vms):
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        cli("--config", cfg, "backup")
        code, _, err = cli("--config", cfg, "restore", "web01", "--copies", "2",
                           "--name-pattern", "same-name")
    assert code == 2 and "needs {n}" in err
    assert posted_vms(server) == []


# -- scoping ----------------------------------------------------------------------------
def test_datacenter_scope_reads_and_stores_only_that_data_center(tmp_path, demo, cli, listed, write_config, serve):
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "backup", "--datacenter", "Lab")
        assert code == 0, out
        searches = [r.query.get("search") for r in server.received if r.path.endswith("/vms")]
        assert searches == ["datacenter=Lab page 1"]
        assert sorted(listed(cfg)) == ["lab-build01", "lab-db01"]
        assert sorted(listed(cfg, "--datacenter", "Production")) == []


def test_provider_scope_from_settings(tmp_path, demo, cli, listed, write_config, serve):
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url,
                           extra="[provider:localdb]\ndatacenter = Production\n")
        assert cli("--config", cfg, "backup")[0] == 0
        assert sorted(listed(cfg)) == ["app01", "db01", "web01", "win-ad01"]


def test_unknown_datacenter_is_a_clear_error(tmp_path, demo, cli, write_config, serve):
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup", "--datacenter", "Nowhere")
    assert code == 2
    assert "no data center named 'Nowhere'" in out and "Lab" in out


# -- what the engine withholds or refuses -------------------------------------------------
def test_locked_vm_is_fetched_again(tmp_path, demo, cli, write_config, serve):
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "backup")
    lab_db01 = next(vm for vm in demo.vms if vm.name == "lab-db01")
    assert code == 0 and "6/6 VMs" in out
    assert any(r.path.endswith(lab_db01.id) and r.query == {"all_content": "true"}
               for r in server.received)


def test_missing_ovf_is_reported_and_the_previous_backup_kept(tmp_path, cli, listed, write_config, serve):
    first = synth.demo_engine()
    with serve(tmp_path, first, "first.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
    before = listed(cfg)

    second = synth.demo_engine()
    for vm in second.vms:
        if vm.name == "app01":
            vm.ovf_missing_always = True
    with serve(tmp_path, second, "second.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup", "--full")   # a sweep reads app01
    assert code == 1                                   # partial
    assert "skipped VM app01" in out and "previous backup is kept" in out
    after = listed(cfg)
    # the new generation is complete: app01 is in it with its previous configuration,
    # flagged "unread" (the next run reads it again)
    assert after["app01"]["generation"] == after["web01"]["generation"]
    assert after["web01"]["generation"] != before["web01"]["generation"]
    assert after["app01"]["ovf_hash"] == before["app01"]["ovf_hash"]
    assert after["app01"]["flags"] == ["unread"] and after["web01"]["flags"] == []


def test_broken_ovf_affects_that_vm_only(tmp_path, cli, listed, write_config, serve):
    eng = synth.demo_engine()
    eng.vms[0].ovf = eng.vms[0].ovf.replace("<Content", "<!DOCTYPE x [<!ENTITY e SYSTEM "
                                            "'file:///etc/passwd'>]><Content", 1)
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "backup")
    assert code == 1
    assert f"skipped VM {eng.vms[0].name}" in out and "5/6 VMs" in out
    assert eng.vms[0].name not in listed(cfg)
    assert "root:" not in out


def test_restore_conflict_names_the_vm(tmp_path, cli, write_config, serve):
    eng = synth.demo_engine()
    eng._extra.clear()
    eng.add_restore("web01", status=409, conflict="id")
    with serve(tmp_path, eng) as server:
        cfg = write_config(tmp_path, server.url)
        cli("--config", cfg, "backup")
        code, out, _ = cli("--config", cfg, "restore", "web01")
    assert code == 2
    assert "VM 'web01' was not restored" in out and "already has a VM" in out
    assert "same identifier already exists" in out


def test_transient_5xx_on_a_page_is_retried(tmp_path, demo, cli, write_config, serve):
    demo.add_error("GET", synth.with_query(f"{synth.API}/vms", all_content="true", max="100",
                                           search="page 1"), 503, times=1)
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
    assert code == 0 and "6/6 VMs" in out
    assert sum(r.query.get("search") == "page 1" for r in server.received) == 2


def test_persistent_5xx_abandons_the_run_and_keeps_the_previous_generation(tmp_path, cli, listed, write_config, serve):
    with serve(tmp_path, synth.demo_engine(), "ok.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        assert cli("--config", cfg, "backup")[0] == 0
    before = listed(cfg)
    broken = synth.demo_engine()
    broken.add_error("GET", synth.with_query(f"{synth.API}/vms", all_content="true", max="100",
                                             search="page 1"), 500, times=None)
    with serve(tmp_path, broken, "broken.yaml") as server:
        cfg = write_config(tmp_path, server.url)
        code, out, _ = cli("--config", cfg, "backup", "--full")      # pages are read
    assert code == 2
    assert "answered 500" in out and "abandoned" in out
    assert listed(cfg) == before


def test_engine_that_times_out(tmp_path, demo, cli, write_config, serve):
    with serve(tmp_path, demo, delay=1.5) as server:
        cfg = write_config(tmp_path, server.url, engine_extra="timeout = 1\nretries = 0\n")
        code, out, err = cli("--config", cfg, "backup")
    assert code == 2
    assert "did not answer within 1s" in out, (out, err)


def test_engine_unreachable(tmp_path, cli, write_config):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_config(tmp_path, f"http://127.0.0.1:{port}/ovirt-engine/api",
                       engine_extra="retries = 0\n")
    code, out, err = cli("--config", cfg, "backup")
    assert code == 2
    assert f"cannot reach the engine at http://127.0.0.1:{port}" in out


def test_wrong_password(tmp_path, demo, monkeypatch, cli, write_config, serve):
    monkeypatch.setenv("TEST_ENGINE_PASSWORD", "not-the-password")
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--config", cfg, "backup")
    assert code == 2
    assert "refused the login of 'admin@internal'" in out
    assert "not-the-password" not in out + err


def test_inline_password_is_refused(tmp_path, cli):
    cfg = tmp_path / "c.conf"
    cfg.write_text("[engine]\nurl = https://e.example.com/ovirt-engine/api\npassword = hunter2\n")
    code, out, err = cli("--config", str(cfg), "backup")
    assert code == 2 and "password_file" in err and "hunter2" not in err


def test_insecure_gives_no_tls_warning_for_plain_http_to_this_host(tmp_path, demo, cli,
                                                                   write_config, serve):
    """There is no TLS to verify on http:// (the https case: tests/test_secrets.py)."""
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        code, out, err = cli("--insecure", "--config", cfg, "list")
    assert code == 0 and "NOT verified" not in err and "in clear" not in err


# -- the catalog --------------------------------------------------------------------------
def test_second_backup_of_an_unchanged_engine_stores_no_new_ovf(tmp_path, demo, cli, write_config, serve):
    import sqlite3

    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        cli("--config", cfg, "backup")
        code, out, _ = cli("--config", cfg, "backup")
    assert code == 0 and "localdb ok (6 written, 0 new)" in out
    db = sqlite3.connect(tmp_path / "state" / "catalog.sqlite")
    assert db.execute("SELECT count(*) FROM blobs").fetchone()[0] == 6
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_a_crash_mid_run_leaves_the_previous_generation(tmp_path, demo, cli, listed, write_config, serve):
    with serve(tmp_path, demo) as server:
        cfg = write_config(tmp_path, server.url)
        cli("--config", cfg, "backup")
        before = listed(cfg)
        # a second run in another process, killed after writing two VMs
        script = textwrap.dedent(f"""
            import os
            from ovirt_backup_plugin.host import Session, load_config
            from ovirt_backup_plugin.backup.run import run_backup
            session = Session.open(load_config({cfg!r}))
            written = []
            def after(outcome, name, impls, kwargs):
                if name == "write_ovf":
                    written.append(1)
                    if len(written) == 2:
                        os._exit(9)
            session.pm.add_hookcall_monitoring(lambda *a: None, after)
            run_backup(session.engine, session.handles, system=session.config.system)
            """)
        proc = subprocess.run([sys.executable, "-c", script], env=dict(os.environ),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 9, proc.stderr
    assert listed(cfg) == before
