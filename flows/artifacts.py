"""The run summary as Prefect artifacts: one Markdown overview plus tables a rev-ops person can scan:
what each stream pulled, who changed tier (and why), what the CRMs refused, and in a dry run what
would change, person by person."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from leadloop.flows.reports import markdown_table
from leadloop.flows.steps import SyncSummary


def summary_markdown(summary: SyncSummary) -> str:
    title = f"# leadloop {summary.kind}{' (dry run: nothing written)' if summary.dry_run else ''}"
    playbook = summary.playbook
    if playbook.get("preview"):
        live = (f"**Preview** of a playbook that is not live (the live one is `{playbook.get('was_live')}`): "
                "nothing written; a rescore with `activate: true` makes it live.")
    elif playbook.get("activated"):
        live = f"Playbook `{playbook.get('model_version')}` is **live from this run on**."
    else:
        live = "Scored with the live playbook."
    lines = [
        title, "",
        f"Model version `{summary.model_version}` · {summary.seconds:.1f} s · run `{summary.run_id}`", "",
        live, "",
        markdown_table(["what", "count"], [
            ["records pulled", summary.records_pulled], ["people scored", summary.people_scored],
            *([["people stored (an hourly run rescores who changed or came due)", summary.rescored["of"]]]
              if summary.rescored and summary.people_scored < summary.rescored["of"] else []),
            ["accounts scored", summary.accounts_scored],
            ["tier changes", sum(summary.tier_changes.values())],
            ["fields written", summary.fields_written], ["tasks created", summary.tasks_created],
            ["rejected by the CRM", summary.rejections],
            ["tasks awaiting confirmation", summary.tasks_unconfirmed],
            ["tasks given up", summary.tasks_given_up],
            ["routed people without a task", len(summary.tasks_unplaced)],
        ]), "",
        f"## {summary.tiers_title}", "", markdown_table(["tier", "people"], summary.tier_counts.items()),
    ]
    if summary.tier_changes:
        lines += ["", "## Tier changes", "", markdown_table(["move", "people"], summary.tier_changes.items())]
    if summary.tier_moves:
        moves = [[m["name"], m["company"], f"{m['old tier']} → {m['new tier']}", m["top reason"]]
                 for m in summary.tier_moves[:10]]
        lines += ["", f"## Who changed tier (the first {len(moves)}: see the tier-changes table)", "",
                  markdown_table(["name", "company", "move", "top reason"], moves)]
    if summary.suppressions:
        lines += ["", "## Suppressed", "", markdown_table(["why", "people"], summary.suppressions.items())]
    if summary.tasks_by_owner:
        verb = "would get" if summary.dry_run else "got"
        lines += ["", f"## New tasks by rep ({verb})", "",
                  markdown_table(["rep", "tasks"], summary.tasks_by_owner.items())]
    calls = [[crm, endpoint, n] for crm, by in summary.api_calls.items() for endpoint, n in by.items()]
    if calls:
        lines += ["", "## API calls", "", markdown_table(["CRM", "endpoint", "calls"], calls)]
    groups = summary.rejection_groups(examples=5)
    if groups:
        lines += ["", "## Not written (retried next run)", "", markdown_table(
            ["CRM", "object", "reason", "count", "examples"],
            [[g["crm"], g["object"], g["reason"][:300], g["count"], ", ".join(g["examples"])]
             for g in groups[:30]])]
    if summary.failed_writes():
        lines += ["", f"**Every write failed for {', '.join(summary.failed_writes())}.**"]
    if summary.tasks_unconfirmed:
        lines += ["", f"{summary.tasks_unconfirmed} task creates got no answer: the next run looks for them "
                      "by key before sending anything again."]
    if summary.tasks_fallback:
        lines += ["", f"The fallback owner took the tasks of {len(summary.tasks_fallback)} people: "
                      + ", ".join(summary.tasks_fallback[:20])]
    return "\n".join(lines)


def publish(summary: SyncSummary) -> None:
    """Create the artifacts of one run (inside a flow run)."""
    key = summary.kind.replace("_", "-")
    create_markdown_artifact(summary_markdown(summary), key=f"{key}-summary",
                             description=f"leadloop {summary.kind} summary")
    create_table_artifact(
        [{"crm": p.crm, "stream": p.stream, "records": p.records, "deleted": p.deleted,
          "rejected": p.rejected, "pages": p.pages} for p in summary.pulls] or [{"crm": "", "stream": ""}],
        key=f"{key}-pulls", description="records pulled per stream",
    )
    nobody = {"name": "", "company": "", "old tier": "", "new tier": "nobody changed tier"}
    create_table_artifact(
        summary.tier_moves or [nobody], key=f"{key}-tier-changes",
        description=f"who changed tier ({sum(summary.tier_changes.values())} people; the first "
                    f"{len(summary.tier_moves)} from the best new tier down) and the reason that counted "
                    "most")
    if summary.dry_run:
        create_table_artifact(
            [{c: row.get(c, "") for c in ("crm", "person", "email", "field", "old", "new")}
             for row in summary.changes] or [{"crm": "", "person": "", "field": "nothing would change"}],
            key=f"{key}-would-change",
            description="every field (old → new) and task a real run would write, by person")
    else:
        create_table_artifact(
            summary.rejected or [{"crm": "", "object": "", "who": "", "reason": "nothing was refused"}],
            key=f"{key}-rejected",
            description="each write the CRMs refused (retried next run), and each routed person without "
                        "a task")
