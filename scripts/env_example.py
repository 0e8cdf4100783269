"""Write .env.example from the settings table, so it lists every setting with its default."""

from __future__ import annotations

from pathlib import Path

from proxy.config import SETTINGS, Settings

HEADER = """# llm-dialect-proxy settings. Copy to .env and edit; flags override the environment,
# which overrides this file, which overrides the defaults shown here.
"""


def main() -> None:
    defaults = Settings()
    lines = [HEADER]
    for spec in SETTINGS:
        value = getattr(defaults, spec.name)
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        lines += [f"# {spec.help[0].upper()}{spec.help[1:]}.", f"{spec.name.upper()}={shown}", ""]
    Path(__file__).resolve().parent.parent.joinpath(".env.example").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
