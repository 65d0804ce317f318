"""Plain-text tables for the textgen command's output."""


def table(rows: list[tuple]) -> list[str]:
    """The rows' cells left-aligned in columns as wide as their widest cell."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
