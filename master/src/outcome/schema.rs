//! The summary's JSON Schema (draft 2020-12), generated from the types of this module so it
//! cannot drift from what is written: `docs/summary.schema.json` is [`schema_text`] written out,
//! and a test fails when the two differ.

use schemars::generate::SchemaSettings;

use super::Summary;

/// The schema of `stampede.summary.v1` as JSON. It describes what a reader accepts (the
/// deserializing side): fields added later within v1 are optional, so older summaries validate.
pub fn schema() -> serde_json::Value {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Summary>();
    schema.to_value()
}

/// The schema as the published file holds it: pretty JSON and a final newline.
pub fn schema_text() -> String {
    // Serializing a `Value` cannot fail: its keys are strings.
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}
