//! report -> **JSON**: one document with the period, KPIs (by machine name), every table as an
//! array of objects keyed by column name, the chart series and the notes. Numbers stay numbers
//! (money in currency units with exact cents, ratios to 4 decimals).

use serde_json::{Map, Value as J, json};

use super::{Report, ReportError};

/// The JSON document of a report.
pub fn to_value(report: &Report) -> J {
    let kpis: Map<String, J> = report.kpis.iter().map(|k| (k.key.to_owned(), k.value.json())).collect();
    let tables: Map<String, J> = report
        .tables
        .iter()
        .map(|table| {
            let rows = table
                .rows
                .iter()
                .map(|row| {
                    let object: Map<String, J> =
                        table.columns.iter().zip(row).map(|(c, v)| (c.key.to_owned(), v.json())).collect();
                    J::Object(object)
                })
                .collect();
            (table.key.to_owned(), J::Array(rows))
        })
        .collect();
    let charts: Vec<J> = report
        .charts
        .iter()
        .map(|c| {
            let series: Map<String, J> = c.series.iter().map(|(name, values)| (name.clone(), json!(values))).collect();
            json!({ "title": c.title, "labels": c.labels, "series": series })
        })
        .collect();
    json!({
        "report_type": report.report_type,
        "title": report.title,
        "period": { "start_date": report.start, "end_date": report.end },
        "profile_ids": report.profile_ids,
        "generated_at": report.generated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data_complete_to": report.complete_to.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "kpis": kpis,
        "tables": tables,
        "charts": charts,
        "notes": report.notes,
    })
}

/// Pretty-printed JSON bytes of the report.
pub fn to_json(report: &Report) -> Result<Vec<u8>, ReportError> {
    let mut bytes = serde_json::to_vec_pretty(&to_value(report)).map_err(|e| ReportError::Encode(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}
