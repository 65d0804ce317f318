"""`textgen adapters`: the published adapters and their versions, switched and deleted (the trainer's
AdapterService; through a gateway that checks keys, switching and deleting take a `train` key).

    textgen adapters                          every adapter, its serving version and how many it keeps
    textgen adapters show NAME                its versions, newest first, with each one's job and evaluation
    textgen adapters serve NAME VERSION       roll back or forward
    textgen adapters delete NAME [VERSION]    one version, or the whole adapter
"""
import argparse

from textgen.client.tables import table


def _versions(adapter) -> list[str]:
    rows = [("VERSION", "SERVING", "JOB", "F1", "FORMAT")]
    for version in adapter.versions:
        evaluation = version.evaluation if version.HasField("evaluation") else None
        rows.append((version.version, "yes" if version.serving else "", version.job_id or "-",
                     f"{evaluation.f1:.1f}" if evaluation else "-",
                     f"{evaluation.format_compliance:.0f}%" if evaluation else "-"))
    return table(rows)


def run(client, args) -> int:
    if args.action == "serve":
        adapter = client.serve_adapter_version(args.name, args.version)
        print(f"{adapter.name} now serves {adapter.serving_version}")
    elif args.action == "delete":
        client.delete_adapter(args.name, args.version)
        print(f"deleted {args.name}{' version ' + args.version if args.version else ''}")
    elif args.action == "show":
        adapter = next((a for a in client.adapters() if a.name == args.name), None)
        if adapter is None:
            print(f"no adapter {args.name!r} is published")
            return 1
        print("\n".join(_versions(adapter)))
    else:
        rows = [("ADAPTER", "SERVING", "VERSIONS")] + [(a.name, a.serving_version or "-", len(a.versions))
                                                        for a in client.adapters()]
        print("\n".join(table(rows)))
    return 0


def add_to(commands) -> None:
    command = commands.add_parser("adapters", help="published adapters: list, show, serve a version, delete",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("action", nargs="?", choices=["list", "show", "serve", "delete"], default="list")
    command.add_argument("name", nargs="?")
    command.add_argument("version", nargs="?")
    command.set_defaults(run=run)
