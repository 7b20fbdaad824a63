"""``lumina-analytics alerts``: evaluate rules, list alerts, replay a period, deliver the outbox.

``evaluate`` without ``--at`` evaluates at the end of the newest data in the warehouse (the
5-minute bucket holding the latest ``llm_calls`` row), which is "now" for a live warehouse
and the sensible "now" for a demo one. Pass ``--at`` to pin the time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from lumina_analytics.warehouse import Warehouse


def register(sub: Any) -> None:
    """Add the ``alerts`` subcommands."""
    p = sub.add_parser("alerts", help="evaluate alert rules, list and replay alerts")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    ev = asub.add_parser("evaluate", help="evaluate every rule once, persist state, notify")
    ev.add_argument(
        "--at", metavar="TIME", help="evaluation time (UTC; default: end of latest data)"
    )
    ev.add_argument(
        "--rules",
        metavar="FILE",
        help="rules YAML (default: $LUMINA_ALERT_RULES or the packaged defaults)",
    )
    ev.add_argument(
        "--no-notify", action="store_true", help="persist state and history but send nothing"
    )
    ev.set_defaults(func=_evaluate)

    ls = asub.add_parser("list", help="list active alerts or the history")
    ls.add_argument(
        "--state",
        choices=["pending", "firing", "resolved", "cancelled", "active", "all"],
        default="active",
        help="which alerts (default: active = pending and firing)",
    )
    ls.add_argument("--rule", help="only this rule")
    ls.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    ls.set_defaults(func=_list)

    rp = asub.add_parser("replay", help="evaluate every STEP over a past period (writes nothing)")
    rp.add_argument("--start", required=True, metavar="TIME", help="first evaluation time (UTC)")
    rp.add_argument(
        "--end", metavar="TIME", help="last evaluation time (default: end of latest data)"
    )
    rp.add_argument("--step", default="5min", help="evaluation interval (default 5min)")
    rp.add_argument("--rules", metavar="FILE", help="rules YAML")
    rp.add_argument(
        "--output", metavar="FILE", help="write the transitions as CSV or JSONL (by suffix)"
    )
    rp.add_argument("--no-root-cause", action="store_true", help="skip root-cause hints (faster)")
    rp.set_defaults(func=_replay)

    va = asub.add_parser("validate", help="check a rules file and print its rules")
    va.add_argument("--rules", metavar="FILE", help="rules YAML")
    va.set_defaults(func=_validate)

    de = asub.add_parser("deliver", help="send notifications that earlier runs still owe")
    de.add_argument("--rules", metavar="FILE", help="rules YAML (for its sinks)")
    de.set_defaults(func=_deliver)


def _labels_text(labels: Any) -> str:
    if isinstance(labels, str):
        labels = json.loads(labels)
    return ",".join(
        f"{k}={v}" for k, v in sorted((labels or {}).items()) if k not in ("alertname", "severity")
    )


def _hint_text(rc: Any) -> str:
    if isinstance(rc, str):
        rc = json.loads(rc)
    if not rc:
        return ""
    return "; ".join(
        f"{h['dimension']}={h['value']} ({h['share']:.0%} of the excess, "
        f"{h.get('call_share', 0):.0%} of calls)"
        for h in rc
        if "dimension" in h
    )


def _evaluate(args: argparse.Namespace) -> int:
    from lumina_analytics.alerts.runner import evaluate_warehouse

    rep = evaluate_warehouse(at=args.at, rules=args.rules, notify=not args.no_notify)
    res = rep.result
    print(f"evaluated at {res.at} (data time)")
    for name, err in sorted(res.errors.items()):
        print(f"  rule {name}: could not evaluate: {err}", file=sys.stderr)
    for t in res.transitions:
        print(f"  {t['state']:<9} {t['rule']} {_labels_text(t['labels'])}  {t['summary']}")
        if t["state"] == "firing" and t.get("root_cause"):
            print(f"            likely cause: {_hint_text(t['root_cause'])}")
    firing = sum(1 for s in res.state.values() if s.state == "firing")
    pending = len(res.state) - firing
    sent = " (not queued: --no-notify)" if args.no_notify and res.notifications else ""
    print(
        f"{firing} firing, {pending} pending, {len(res.transitions)} transition(s), "
        f"{len(res.notifications)} notification(s){sent}"
    )
    for note in rep.notes:
        print(f"note: {note}", file=sys.stderr)
    if rep.delivery is not None:
        d = rep.delivery
        print(f"delivered {d.delivered}, failed {d.failed}, still owed {d.still_owed}")
        for e in d.errors:
            print(f"  {e}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from lumina_analytics.alerts import store

    wh = Warehouse()
    if args.state in ("active", "pending", "firing"):
        states = store.load_state(wh)
        rows = [s for s in states.values() if args.state == "active" or s.state == args.state]
        rows = [s for s in rows if args.rule is None or s.rule == args.rule][: args.limit]
        if not rows:
            print(f"no {args.state} alerts")
            return 0
        for s in sorted(rows, key=lambda s: (s.state, s.rule)):
            print(
                f"{s.state:<8} {s.severity:<8} {s.rule} {_labels_text(s.labels)} since "
                f"{s.active_since}  {s.summary}"
            )
            if s.root_cause:
                print(f"         likely cause: {_hint_text(s.root_cause)}")
        return 0
    hist = store.history(wh, None if args.state == "all" else args.state, args.rule)
    if hist.empty:
        print(f"no {args.state} alerts in the history")
        return 0
    for r in hist.head(args.limit).to_dict("records"):
        print(
            f"{r['eval_ts']}  {r['state']:<9} {r['rule']} {_labels_text(r['labels'])}  {r['summary']}"
        )
    return 0


def _replay(args: argparse.Namespace) -> int:
    from lumina_analytics.alerts.runner import replay_warehouse

    hist, notes = replay_warehouse(
        args.start, args.end, args.step, rules=args.rules, root_cause=not args.no_root_cause
    )
    for r in hist.to_dict("records"):
        print(
            f"{r['eval_ts']}  {r['state']:<9} {r['rule']} {_labels_text(r['labels'])}  {r['summary']}"
        )
    fired = int((hist["state"] == "firing").sum()) if not hist.empty else 0
    print(f"{len(hist)} transition(s), {fired} firing, {len(notes)} notification(s) (nothing sent)")
    if args.output:
        out = Path(args.output)
        frame = hist.copy()
        frame["labels"] = frame["labels"].map(lambda d: json.dumps(d, sort_keys=True))
        frame["root_cause"] = frame["root_cause"].map(lambda d: json.dumps(d) if d else None)
        if out.suffix == ".jsonl":
            frame.to_json(out, orient="records", lines=True, date_format="iso")
        else:
            frame.to_csv(out, index=False)
        print(f"wrote {out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from lumina_analytics.alerts.rules import format_duration, load_rules, resolve_rules_path

    rs = load_rules(args.rules)
    print(f"{resolve_rules_path(args.rules)}: {len(rs.rules)} rule(s) OK")
    for r in rs.rules:
        hold = format_duration(pd.Timedelta(r.for_)) if r.for_ else "0"
        print(f"  {r.name:<32} {r.kind:<16} {r.metric:<14} severity={r.severity} for={hold}")
    return 0


def _deliver(args: argparse.Namespace) -> int:
    from lumina_analytics.alerts.runner import deliver

    d = deliver(args.rules)
    print(f"delivered {d.delivered}, failed {d.failed}, still owed {d.still_owed}")
    for e in d.errors:
        print(f"  {e}", file=sys.stderr)
    return 0 if d.failed == 0 else 1
