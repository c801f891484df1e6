"""Plain-text tables for the terminal (spc inspect, spc verify), and Markdown ones for generated docs."""


def render(head: tuple[str, ...], rows: list[tuple]) -> str:
    """Left-aligned columns, a rule under the header."""
    cells = [tuple(str(v) for v in head)] + [tuple(str(v) for v in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(head: tuple[str, ...], rows: list[tuple]) -> str:
    """A Markdown (GitHub) table."""
    lines = ["| " + " | ".join(str(v) for v in head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |" for r in rows])
