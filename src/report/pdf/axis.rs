//! Value-axis arithmetic: round gridline steps, compact tick labels and the
//! thinning of crowded category labels.

/// Gridlines aimed for on a value axis.
const TARGET_TICKS: usize = 5;

/// The value range drawn on the y axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

impl Axis {
    /// A range with round gridlines covering `lo..=hi`.
    pub fn nice(lo: f64, hi: f64) -> Self {
        let (lo, hi) = if hi - lo > f64::EPSILON * hi.abs().max(1.0) { (lo, hi) } else { (lo - 1.0, hi + 1.0) };
        let step = nice_step((hi - lo) / TARGET_TICKS as f64);
        Self { min: (lo / step).floor() * step, max: (hi / step).ceil() * step, step }
    }

    pub fn ticks(&self) -> Vec<f64> {
        let count = ((self.max - self.min) / self.step).round() as usize;
        (0..=count).map(|i| self.min + i as f64 * self.step).collect()
    }

    /// Position of `value` on the axis: 0.0 at `min`, 1.0 at `max`.
    pub fn fraction(&self, value: f64) -> f32 {
        ((value - self.min) / (self.max - self.min)) as f32
    }
}

/// Rounds `raw` up to 1, 2, 2.5 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalized = raw / magnitude;
    let factor = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().find(|&f| normalized <= f + 1e-9).unwrap_or(10.0);
    factor * magnitude
}

/// Compact tick label such as "1.5M", "250k" or "0.25": the unit suffix is
/// chosen from `magnitude` (the largest absolute value on the axis) so all
/// labels of one axis share it, and the decimals from `step`.
pub fn format_tick(value: f64, step: f64, magnitude: f64) -> String {
    let (unit, suffix) =
        [(1e9, "B"), (1e6, "M"), (1e3, "k")].into_iter().find(|&(unit, _)| magnitude >= unit).unwrap_or((1.0, ""));
    let scaled_step = step / unit;
    if value.abs() < scaled_step * unit * 1e-6 {
        return "0".to_string();
    }
    let decimals = (0..6)
        .find(|&d| {
            let shifted = scaled_step * 10f64.powi(d);
            (shifted - shifted.round()).abs() < 1e-6 * shifted.max(1.0)
        })
        .unwrap_or(6) as usize;
    format!("{:.decimals$}{suffix}", value / unit)
}

/// Label every `step`-th category so labels of width `needed` do not
/// overlap in slots of width `slot`.
pub fn label_step(needed: f32, slot: f32) -> usize {
    if slot <= 0.0 {
        return 1;
    }
    ((needed / slot).ceil() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axis_has_round_steps() {
        let axis = Axis::nice(0.0, 365_720.19);
        assert_eq!(axis.step, 100_000.0);
        assert_eq!(axis.min, 0.0);
        assert_eq!(axis.max, 400_000.0);
        assert_eq!(axis.ticks().len(), 5);
        let flat = Axis::nice(5.0, 5.0);
        assert!(flat.min < 5.0 && flat.max > 5.0);
        let negative = Axis::nice(-12.0, 37.0);
        assert!(negative.min <= -12.0 && negative.max >= 37.0);
    }

    #[test]
    fn labels_are_thinned_when_crowded() {
        assert_eq!(label_step(40.0, 50.0), 1);
        assert_eq!(label_step(40.0, 16.0), 3);
        assert_eq!(label_step(40.0, 0.0), 1);
    }

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(format_tick(250_000.0, 50_000.0, 400_000.0), "250k");
        assert_eq!(format_tick(1_500_000.0, 500_000.0, 2e6), "1.5M");
        assert_eq!(format_tick(500_000.0, 500_000.0, 2e6), "0.5M");
        assert_eq!(format_tick(0.0, 100_000.0, 4e5), "0");
        assert_eq!(format_tick(-0.0, 0.2, 1.0), "0");
        assert_eq!(format_tick(12.0, 2.0, 20.0), "12");
        assert_eq!(format_tick(0.25, 0.25, 1.0), "0.25");
        assert_eq!(format_tick(0.4, 0.2, 1.0), "0.4");
        assert_eq!(format_tick(-7_500.0, 2_500.0, 10_000.0), "-7.5k");
    }
}
