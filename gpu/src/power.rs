//! Energy, power and clocks through NVML (libnvidia-ml.so.1, part of the driver), over a
//! window of work. The energy is the difference of the board's energy counter
//! (nvmlDeviceGetTotalEnergyConsumption, mJ, Volta and newer) across the window, so the
//! mean power is joules ÷ seconds of that same window, not a sampled reading. The counter
//! advances in steps of tens of milliseconds: the harness keeps each window ≥ 1 s.
//! Where NVML is missing or the board cannot say, every reading is None with the reason.

use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::Clock;
use std::time::Instant;

/// The NVIDIA driver's version (e.g. "580.65.06"); None where NVML is missing.
pub fn driver_version() -> Option<String> {
    Nvml::init().ok()?.sys_driver_version().ok()
}

/// NVML opened on the device with the given PCI bus id (the CUDA device's own, so
/// CUDA_VISIBLE_DEVICES cannot make them differ).
pub struct Power {
    nvml: Nvml,
    bus_id: String,
    /// The board's enforced power limit, W.
    pub limit_w: Option<f64>,
}

/// A window opened by [`Power::start`].
pub struct Window {
    energy_mj: u64,
    start: Instant,
}

/// What a window measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Energy {
    pub joules: f64,
    pub seconds: f64,
    /// joules ÷ seconds.
    pub mean_w: f64,
}

/// Why the clocks were held down at a moment, as NVML names it (empty: not held down, or
/// only idle).
pub fn throttle_names(reasons: ThrottleReasons) -> Vec<&'static str> {
    [
        (ThrottleReasons::SW_POWER_CAP, "power cap"),
        (ThrottleReasons::HW_SLOWDOWN, "hardware slowdown"),
        (ThrottleReasons::SW_THERMAL_SLOWDOWN, "software thermal"),
        (ThrottleReasons::HW_THERMAL_SLOWDOWN, "hardware thermal"),
        (ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN, "power brake"),
    ]
    .into_iter()
    .filter(|(bit, _)| reasons.contains(*bit))
    .map(|(_, name)| name)
    .collect()
}

impl Power {
    /// NVML on the device at `bus_id` ("0000:1b:00.0"); the reason where there is none.
    pub fn open(bus_id: &str) -> Result<Self, String> {
        let nvml = Nvml::init().map_err(|e| format!("NVML (libnvidia-ml.so.1) is not usable: {e}"))?;
        let device = nvml.device_by_pci_bus_id(bus_id).map_err(|e| format!("NVML has no device at PCI {bus_id}: {e}"))?;
        device.total_energy_consumption().map_err(|e| format!("this board reports no energy counter: {e}"))?;
        let limit_w = device.enforced_power_limit().ok().map(|mw| mw as f64 / 1e3);
        Ok(Power { nvml, bus_id: bus_id.to_string(), limit_w })
    }

    fn device(&self) -> Option<nvml_wrapper::Device<'_>> {
        self.nvml.device_by_pci_bus_id(self.bus_id.as_str()).ok()
    }

    /// Opens a window at the energy counter's present value.
    pub fn start(&self) -> Option<Window> {
        let energy_mj = self.device()?.total_energy_consumption().ok()?;
        Some(Window { energy_mj, start: Instant::now() })
    }

    /// Closes a window: the energy the board used since `start`, and over how long.
    pub fn finish(&self, window: Window) -> Option<Energy> {
        let end_mj = self.device()?.total_energy_consumption().ok()?;
        let seconds = window.start.elapsed().as_secs_f64();
        let joules = end_mj.saturating_sub(window.energy_mj) as f64 / 1e3;
        Some(Energy { joules, seconds, mean_w: joules / seconds })
    }

    /// The SM clock now, MHz (sampled inside a window, it is the clock the work ran at).
    pub fn sm_clock_mhz(&self) -> Option<u32> {
        self.device()?.clock_info(Clock::SM).ok()
    }

    /// Why the clocks are held down now (see [`throttle_names`]).
    pub fn throttled(&self) -> Option<Vec<&'static str>> {
        Some(throttle_names(self.device()?.current_throttle_reasons().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_reasons_are_named() {
        assert!(throttle_names(ThrottleReasons::empty()).is_empty());
        assert_eq!(throttle_names(ThrottleReasons::SW_POWER_CAP | ThrottleReasons::HW_THERMAL_SLOWDOWN), ["power cap", "hardware thermal"]);
    }

    #[test]
    fn no_nvml_is_a_reason_not_a_panic() {
        // On a machine with a driver this opens (or names the bus id it cannot find).
        if let Err(reason) = Power::open("0000:00:00.0") {
            assert!(reason.contains("NVML") || reason.contains("energy"), "{reason}");
        }
    }
}
