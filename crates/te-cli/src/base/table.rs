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

    /// `header` and `rows` as rendered.
    fn rendered(header: &[&str], rows: &[&[&str]]) -> String {
        let mut table = new(header);
        for row in rows {
            table.add_row(row.iter());
        }
        render(&table)
    }

    #[test]
    fn columns_align() {
        let text = rendered(&["NAME", ">COUNT"], &[&["a", "1"], &["longer", "100"]]);
        assert_eq!(text, "NAME    COUNT\na           1\nlonger    100\n");
    }

    #[test]
    fn short_rows_are_padded() {
        assert_eq!(rendered(&["A", "B"], &[&["x"]]), "A  B\nx\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let text = rendered(&["TOOK", "NEXT"], &[&["850µs", "…"], &["1s", "x"]]);
        assert_eq!(text, "TOOK   NEXT\n850µs  …\n1s     x\n");
    }
}
