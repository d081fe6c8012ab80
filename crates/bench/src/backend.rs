//! Backends selected at run time by name: a name plus a `burn::Device`.

use burn::tensor::Device;
use planner::profile::DeviceClass;
use thiserror::Error;

/// A backend Chimera knows, compiled in or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendInfo {
    /// Name as given on the command line.
    pub name: &'static str,
    /// The cargo feature of `bench` that compiles it in.
    pub feature: &'static str,
    /// CPU or GPU.
    pub device: DeviceClass,
    /// Whether this build has it.
    pub compiled: bool,
}

/// Every backend, compiled in or not.
pub const BACKENDS: [BackendInfo; 5] = [
    BackendInfo {
        name: "flex",
        feature: "flex",
        device: DeviceClass::Cpu,
        compiled: cfg!(feature = "flex"),
    },
    BackendInfo {
        name: "ndarray",
        feature: "ndarray",
        device: DeviceClass::Cpu,
        compiled: cfg!(feature = "ndarray"),
    },
    BackendInfo {
        name: "wgpu",
        feature: "wgpu",
        device: DeviceClass::Gpu,
        compiled: cfg!(feature = "wgpu"),
    },
    // wgpu on its fallback software adapter (llvmpipe/lavapipe): exercises the
    // GPU code path without a GPU; its timings never enter a profile.
    BackendInfo {
        name: "wgpu-cpu",
        feature: "wgpu",
        device: DeviceClass::Gpu,
        compiled: cfg!(feature = "wgpu"),
    },
    BackendInfo {
        name: "cuda",
        feature: "cuda",
        device: DeviceClass::Gpu,
        compiled: cfg!(feature = "cuda"),
    },
];

/// Why a backend cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BackendError {
    /// No backend has this name.
    #[error("unknown backend `{name}`; available in this build: {available}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Compiled-in names.
        available: String,
    },
    /// The backend exists but this build does not have it.
    #[error(
        "backend `{name}` is not compiled into this build; rebuild with `--features {feature}` (e.g. `cargo run -p bench --release --features {feature} -- --backend {name}`)"
    )]
    CompiledOut {
        /// The backend.
        name: String,
        /// Its cargo feature.
        feature: &'static str,
    },
}

/// Names of the compiled-in backends.
pub fn available() -> Vec<&'static str> {
    BACKENDS.iter().filter(|b| b.compiled).map(|b| b.name).collect()
}

/// Looks a backend up by name.
pub fn info(name: &str) -> Result<BackendInfo, BackendError> {
    let found = BACKENDS
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| BackendError::Unknown {
            name: name.to_string(),
            available: available().join(", "),
        })?;
    if !found.compiled {
        return Err(BackendError::CompiledOut {
            name: name.to_string(),
            feature: found.feature,
        });
    }
    Ok(*found)
}

/// The device of a compiled-in backend.
pub fn device(name: &str) -> Result<Device, BackendError> {
    let info = info(name)?;
    Ok(match info.name {
        #[cfg(feature = "flex")]
        "flex" => Device::flex(),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // named in the design card; deprecated in burn 0.22
        "ndarray" => Device::ndarray(),
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "wgpu")]
        "wgpu-cpu" => Device::wgpu(burn::tensor::DeviceKind::Cpu),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0),
        other => unreachable!("backend `{other}` is compiled in but has no device"),
    })
}

/// Cargo features this binary was built with (recorded in every measurement).
pub fn build_features() -> Vec<&'static str> {
    let mut features: Vec<&'static str> = BACKENDS
        .iter()
        .filter(|b| b.compiled)
        .map(|b| b.feature)
        .collect();
    features.dedup();
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_backend_lists_the_available_ones() {
        let err = info("tpu").unwrap_err().to_string();
        assert!(
            err.starts_with("unknown backend `tpu`; available in this build: flex"),
            "{err}"
        );
    }

    #[test]
    fn compiled_out_backend_names_its_feature() {
        if !cfg!(feature = "cuda") {
            let err = info("cuda").unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }

    #[test]
    fn cpu_backends_give_devices() {
        for name in available() {
            if info(name).unwrap().device == DeviceClass::Cpu {
                device(name).unwrap();
            }
        }
    }
}
