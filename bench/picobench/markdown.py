"""Markdown pieces for the report."""


def table(headers, rows):
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")
    out = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def pct(x, digits=2):
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def num(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


class Footnotes:
    """Long reasons (why a tool did not run) as numbered notes under a table."""

    def __init__(self):
        self.notes = []

    def ref(self, text):
        if text not in self.notes:
            self.notes.append(text)
        return f"[{self.notes.index(text) + 1}]"

    def render(self):
        return "\n".join(f"[{i}] {n}  " for i, n in enumerate(self.notes, start=1))
