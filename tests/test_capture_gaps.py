"""Capture that no VM and no engine state can break: a page the SDK cannot read, a VM over
the size limit, VMs that move between pages.

Everything runs the real SDK over HTTP against a replay engine synthesized by
``testing.synth`` (the failing page fails in the SDK exactly as against a real engine), and
stores into a real localdb catalog through the CLI.
"""
import pytest
from ovirtsdk4 import Connection

from ovirt_backup_plugin.backup.capture import captured
from ovirt_backup_plugin.engine import Engine, ReadStats
from ovirt_backup_plugin.ovf import MAX_OVF_BYTES
from ovirt_backup_plugin.testing import synth

PAGE = 4
HUGE = 10_500_000            # characters of description: over the SDK's 10,000,000 per node


def inventory(count=10, page_size=PAGE):
    eng = synth.SyntheticEngine(seed=9)
    dc = eng.add_datacenter("DC")
    eng.add_cluster("c1", dc)
    eng.add_storage_domain("sd1", dc, master=True)
    for n in range(count):
        eng.add_vm(f"vm{n:02d}", "c1")
    eng.answers_smaller_pages = True
    return eng


def inflate(vm, chars=HUGE):
    """Give a VM an OVF of about ``chars`` bytes (a huge description, as the engine's OVF
    writer puts it into ``<Description>``)."""
    vm.ovf = vm.ovf.replace("<Description></Description>",
                            "<Description>" + "x" * chars + "</Description>", 1)


def pages_asked(server):
    return [(r.query.get("max"), r.query.get("search")) for r in server.received
            if r.path.endswith("/vms") and r.query.get("all_content") == "true"]


# -- a VM whose OVF is over 10 MB ------------------------------------------------------------
def test_the_synthesized_page_fails_in_the_real_sdk_as_against_an_engine(tmp_path, serve):
    eng = inventory()
    inflate(eng.vms[5])
    with serve(tmp_path, eng, "e.json", page_size=PAGE) as server:
        conn = Connection(url=server.url, username=server.username, password="replay-secret")
        try:
            vms = conn.system_service().vms_service()
            with pytest.raises(Exception, match="Can't move to next node"):
                vms.list(all_content=True, max=PAGE, search="page 2")
            assert len(vms.list(all_content=True, max=PAGE, search="page 1")) == PAGE
        finally:
            conn.close()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_vm_over_10_mb_is_named_with_its_size_the_rest_is_committed(
        tmp_path, workers, cli, listed, write_config, serve):
    eng = inventory()
    big = eng.vms[5]                                    # page 2 of 3
    with serve(tmp_path, eng, "before.json", page_size=PAGE) as server:
        cfg = write_config(tmp_path, server.url, engine_extra=f"page_size = {PAGE}",
                           backup_extra=f"workers = {workers}")
        assert cli("--config", cfg, "backup")[0] == 0
    before = listed(cfg)
    inflate(big)
    with serve(tmp_path, eng, "after.json", page_size=PAGE) as server:
        cfg = write_config(tmp_path, server.url, engine_extra=f"page_size = {PAGE}",
                           backup_extra=f"workers = {workers}")
        code, out, err = cli("--config", cfg, "backup", "--full")     # pages are read
        asked = pages_asked(server)
    assert code == 1, (out, err)
    line = next(x for x in err.splitlines() if "skipped" in x)
    assert f"vm05 ({big.id})" in line
    size = len(big.ovf.encode())
    assert f"its OVF is {size:,} bytes, over the limit of {MAX_OVF_BYTES:,} bytes" in line
    assert "9/10 VMs" in out
    after = listed(cfg)
    assert set(after) == set(before)                    # every VM still listed
    # the previous backup of vm05 is kept in the new generation, marked: read again next run
    assert after["vm05"]["ovf_hash"] == before["vm05"]["ovf_hash"]
    assert "unread" in after["vm05"]["flags"]
    assert all(after[n]["generation"] != before[n]["generation"] for n in after)
    # page 2 was read again in smaller pages, down to the big VM alone; the others as usual
    assert (str(PAGE), "page 2") in asked and ("2", "page 3") in asked and ("1", "page 6") in asked
    assert ("2", "page 1") not in asked and ("1", "page 1") not in asked


def test_an_incremental_run_reads_a_batch_with_a_vm_over_10_mb_in_halves_and_names_it(
        tmp_path, cli, listed, write_config, serve):
    eng = inventory()
    big, edited = eng.vms[5], eng.vms[2]
    with serve(tmp_path, eng, "before.json", page_size=PAGE) as server:
        cfg = write_config(tmp_path, server.url, engine_extra=f"page_size = {PAGE}")
        assert cli("--config", cfg, "backup")[0] == 0
    before = listed(cfg)
    inflate(big)
    eng.log_event(35, vm=big)                           # USER_UPDATE_VM: someone edited it
    eng.change_vm(edited)
    with serve(tmp_path, eng, "after.json", page_size=PAGE) as server:
        cfg = write_config(tmp_path, server.url, engine_extra=f"page_size = {PAGE}")
        code, out, err = cli("--config", cfg, "backup")
        by_id = [r.query["search"] for r in server.received if r.path.endswith("/vms")
                 and r.query.get("search", "").startswith("id=")]
    assert code == 1, (out, err)
    assert "incremental: 2 event(s)" in out and "9/10 VMs" in out
    line = next(x for x in err.splitlines() if "skipped" in x)
    size = len(big.ovf.encode())
    assert f"vm05 ({big.id})" in line and f"its OVF is {size:,} bytes" in line
    # the batch of every VM to read (2 named, 8 sampled) failed in the SDK, and was read
    # again in halves down to the big VM alone; no page was read
    assert len(by_id[0].split(" or ")) == 10 and f"id={big.id}" in by_id
    assert not any("page" in r.query.get("search", "") for r in server.received)
    after = listed(cfg)
    assert after["vm05"]["ovf_hash"] == before["vm05"]["ovf_hash"] and "unread" in after["vm05"]["flags"]
    assert after["vm02"]["ovf_hash"] != before["vm02"]["ovf_hash"]


def test_an_ovf_over_the_size_limit_but_readable_is_named_with_its_size(
        tmp_path, cli, write_config, serve):
    eng = inventory(count=3)
    inflate(eng.vms[1], MAX_OVF_BYTES)                  # readable by the SDK, over our limit
    size = len(eng.vms[1].ovf.encode())
    with serve(tmp_path, eng, "e.json", page_size=PAGE) as server:
        cfg = write_config(tmp_path, server.url, engine_extra=f"page_size = {PAGE}")
        code, out, err = cli("--config", cfg, "backup")
    assert code == 1, (out, err)
    assert f"vm01 ({eng.vms[1].id}): its OVF is unusable: OVF document is {size} bytes, over " \
           f"the limit of {MAX_OVF_BYTES} bytes" in err
    assert "2/3 VMs" in out


def test_the_in_process_read_gives_the_same_as_the_workers(tmp_path, serve, settings_for):
    eng = inventory(count=13)
    inflate(eng.vms[6])
    with serve(tmp_path, eng, "e.json", page_size=PAGE) as server:
        got = {}
        for workers in (0, 2):
            stats = ReadStats()
            with Engine(settings_for(server, page_size=PAGE, retry_delay=0)) as engine:
                got[workers] = [(vm.id, c.ok, c.error) for vm, c in
                                captured(engine, workers=workers, stats=stats)]
            assert stats.unreadable == [(eng.vms[6].id, "vm06")]
    assert got[0] == got[2]
    assert [ok for _, ok, _ in got[0]].count(False) == 1 and len(got[0]) == 13


# -- VMs that move between pages -----------------------------------------------------------------
@pytest.mark.parametrize("workers", ["0", "2"])
def test_vms_removed_and_added_between_two_pages_are_never_skipped_silently(
        tmp_path, workers, cli, listed, write_config, serve):
    eng = inventory(count=12)                              # vm00..vm11, pages of 4
    vm = {v.name: v for v in eng.vms}
    created = eng.add_vm("vm03b", "c1")
    eng.vms.insert(4, eng.vms.pop())                       # after vm03 in the engine's order
    # page 1 gives vm00-vm03; then vm01 is removed: page 2 (OFFSET 4) gives vm05-vm08, and
    # vm04 slips past the boundary. Then vm03b is created before the offset and vm10 removed:
    # page 3 (OFFSET 8) gives vm08 again, vm09, vm11, and ends the listing.
    eng.change_after_page(1, remove=["vm01"])
    eng.change_after_page(2, remove=["vm10"], add=["vm03b"])
    with serve(tmp_path, eng, "drift.json", page_size=PAGE) as server:
        cfg = write_config(tmp_path, server.url, engine_extra=f"page_size = {PAGE}",
                           backup_extra=f"workers = {workers}")
        code, out, err = cli("--config", cfg, "backup")
        pages = [r for r in server.received if r.path.endswith("/vms")
                 and r.query.get("all_content") == "true"]
        by_id = {r.path.rsplit("/", 1)[-1] for r in server.received
                 if "/vms/" in r.path and r.query.get("all_content") == "true"}
    assert code == 0, (out, err)
    assert {r.query["search"] for r in pages} >= {"page 1", "page 2", "page 3"}
    # the pages missed vm04 (and vm10, gone): exactly those were read by id
    assert by_id == {vm["vm04"].id, vm["vm10"].id}
    names = set(listed(cfg))
    assert names == {f"vm{n:02d}" for n in range(12)} - {"vm10"}
    assert "vm03b" not in names and created.id not in by_id    # not there when the run started
    assert "1 VM(s) were not in the pages" in out and "read by id: vm04" in out
    assert f"VM vm10 ({vm['vm10'].id}) was removed from the engine while the run read it" in out
    assert "11/11 VMs" in out and "1 removed during the run" in out


def test_a_vm_removed_before_its_page_is_reported_as_removed(tmp_path, cli, write_config,
                                                             serve):
    eng = inventory(count=9)
    gone = eng.vms[7]                                     # on page 2, removed before it
    eng.change_after_page(1, remove=[gone])
    with serve(tmp_path, eng, "gone.json", page_size=PAGE) as server:
        cfg = write_config(tmp_path, server.url, engine_extra=f"page_size = {PAGE}")
        code, out, err = cli("--config", cfg, "backup")
    assert code == 0, (out, err)
    assert (f"VM vm07 ({gone.id}) was removed from the engine while the run read it: it is "
            "not in this run; its previous backups are kept") in out
    assert "8/8 VMs" in out and "1 removed during the run" in out
