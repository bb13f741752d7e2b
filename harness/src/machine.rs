//! What a user says about the machine: the `[system]` section of a plan (or of the file
//! `--system` names), echoed into the calibration as `system.description`. Its figures give
//! the theoretical peaks and the memory bandwidth where given; detection gives them
//! otherwise. Plans (config.rs) and the calibration document (calibration.rs) both use it,
//! so neither depends on the other.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the plan says about the machine: theoretical peaks come from here where given, and
/// from detection otherwise. Every figure may cite its source in `sources`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SystemSection")]
pub struct Description {
    /// The system's name, e.g. "Fugaku".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Nodes of the whole system (the run's own count is detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
    /// Cores per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores_per_node: Option<usize>,
    /// The clock the theoretical peaks use, GHz (replaces the measured one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_ghz: Option<f64>,
    /// FLOP per cycle per core, by precision name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flop_per_cycle: BTreeMap<String, f64>,
    /// Theoretical memory bandwidth per node, GB/s (the stencils' and the triad's ceiling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bandwidth_gbs: Option<f64>,
    /// Memory per node, GiB (informative; sizing uses the memory detected on the nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gib: Option<f64>,
    /// Where each figure comes from, keyed by the field's name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
}
