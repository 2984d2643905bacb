//! Plain-text tables for terminal output: comfy-table without borders, with
//! columns two spaces apart and no trailing spaces.

use comfy_table::{CellAlignment, Table, presets::NOTHING};

/// A table with these column titles, no borders and no wrapping, its columns
/// two spaces apart; a title starting with `>` makes its column right-aligned
/// (the `>` is not shown). Rows shorter than the header are blank at the end.
pub(crate) fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_header(header.iter().map(|h| h.trim_start_matches('>')));
    for (column, title) in table.column_iter_mut().zip(header) {
        column.set_padding(if column.index == 0 { (0, 0) } else { (2, 0) });
        if title.starts_with('>') {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// The table as text: header, then rows, each line ending in `\n`, without
/// trailing spaces.
pub(crate) fn render(table: &Table) -> String {
    table.lines().fold(String::new(), |mut out, line| {
        out.push_str(line.trim_end());
        out.push('\n');
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = new(&["NAME", ">COUNT"]);
        t.add_row(["a", "1"]);
        t.add_row(["longer", "100"]);
        assert_eq!(render(&t), "NAME    COUNT\na           1\nlonger    100\n");
    }

    #[test]
    fn short_rows_are_padded() {
        let mut t = new(&["A", "B"]);
        t.add_row(["x"]);
        assert_eq!(render(&t), "A  B\nx\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = new(&["TOOK", "NEXT"]);
        t.add_row(["850µs", "…"]);
        t.add_row(["1s", "x"]);
        assert_eq!(render(&t), "TOOK   NEXT\n850µs  …\n1s     x\n");
    }
}
