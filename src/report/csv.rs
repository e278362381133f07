//! report -> **CSV** (RFC 4180 via the `csv` crate): the report's per-day detail table, one header
//! row of machine names, plain numbers. Every cell goes through [`neutralize`], so a value such as
//! `=HYPERLINK(..)` coming from event data is never run as a formula by a spreadsheet. A last
//! column, `data_complete_to`, states (on every row, so a filtered sheet keeps it) the time every
//! event stored before is counted.

use super::{Report, ReportError};

/// Prefixes `'` to a cell a spreadsheet would read as a formula (OWASP "CSV injection"): one that
/// starts with `=`, `+`, `-`, `@`, tab or carriage return, unless it is a plain number such as `-12.5`.
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() { format!("'{cell}").into() } else { cell.into() }
}

/// The CSV bytes of the report's first table.
pub fn to_csv(report: &Report) -> Result<Vec<u8>, ReportError> {
    let encode = |e: csv::Error| ReportError::Encode(e.to_string());
    let mut writer = csv::Writer::from_writer(Vec::new());
    let complete_to = report.complete_to.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    if let Some(table) = report.tables.first() {
        let extra = complete_to.as_ref().map(|_| "data_complete_to");
        writer.write_record(table.columns.iter().map(|c| c.key).chain(extra)).map_err(encode)?;
        for row in &table.rows {
            let mut cells: Vec<String> = row.iter().map(|v| neutralize(&v.plain()).into_owned()).collect();
            cells.extend(complete_to.clone());
            writer.write_record(&cells).map_err(encode)?;
        }
    }
    writer.into_inner().map_err(|e| ReportError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralized_and_numbers_are_not() {
        assert_eq!(neutralize("=1+2"), "'=1+2");
        assert_eq!(neutralize("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralize("+cmd"), "'+cmd");
        assert_eq!(neutralize("-12.5"), "-12.5");
        assert_eq!(neutralize("plain"), "plain");
    }
}
