//! Progress bar for interactive runs (hidden when stderr is not a terminal or when disabled).

use crate::report::Sample;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn new(enabled: bool, duration_s: u64) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new(duration_s);
        let style = ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} simulated s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        Progress(Some(bar))
    }

    pub fn set(&self, simulated_s: u64, samples: &[Sample]) {
        if let (Some(bar), Some(last)) = (&self.0, samples.last()) {
            bar.set_position(simulated_s);
            bar.set_message(format!("live {}  connectivity {:.4}", last.live, last.connectivity));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
