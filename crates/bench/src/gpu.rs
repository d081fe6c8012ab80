//! What GPU (or software adapter) a wgpu measurement ran on.
//!
//! The description goes into the fingerprint. A software adapter (llvmpipe,
//! lavapipe, WARP: wgpu reports them as `DeviceType::Cpu`) runs the wgpu code
//! path without a GPU; its timings are labelled so and kept out of profiles.

/// The adapter wgpu picked, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name ("NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub name: String,
    /// Graphics API ("Vulkan", "Gl").
    pub api: String,
    /// Driver name and version.
    pub driver: String,
    /// A software rasteriser on the CPU, not a GPU.
    pub software: bool,
}

/// Prefix of the fingerprint's `gpu` field for software adapters.
pub const SOFTWARE_PREFIX: &str = "software adapter";

impl AdapterSummary {
    /// The fingerprint's `gpu` field.
    pub fn describe(&self) -> String {
        let base = format!("{} · {} · {}", self.name, self.api, self.driver.trim());
        if self.software {
            format!("{SOFTWARE_PREFIX} (not a GPU timing): {base}")
        } else {
            base
        }
    }
}

/// True when a fingerprint's `gpu` field names a software adapter.
pub fn is_software(gpu: Option<&str>) -> bool {
    gpu.is_some_and(|g| g.starts_with(SOFTWARE_PREFIX))
}

/// Asks wgpu for the adapter a device of this kind gets (`software`: the
/// fallback CPU adapter), as Burn's default selection does: high performance
/// first. `None` when no adapter is found.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapter(software: bool) -> Option<AdapterSummary> {
    use burn::tensor::wgpu::wgpu;
    let instance = wgpu::Instance::default();
    let options = wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: software,
        ..Default::default()
    };
    let adapter = futures_lite::future::block_on(instance.request_adapter(&options)).ok()?;
    let info = adapter.get_info();
    Some(AdapterSummary {
        name: info.name,
        api: format!("{:?}", info.backend),
        driver: format!("{} {}", info.driver, info.driver_info),
        software: info.device_type == wgpu::DeviceType::Cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(software: bool) -> AdapterSummary {
        AdapterSummary {
            name: if software {
                "llvmpipe (LLVM 15)"
            } else {
                "NVIDIA H100 80GB HBM3"
            }
            .into(),
            api: "Vulkan".into(),
            driver: "driver 550.54 ".into(),
            software,
        }
    }

    #[test]
    fn gpus_and_software_adapters_are_told_apart() {
        let gpu = adapter(false).describe();
        assert_eq!(gpu, "NVIDIA H100 80GB HBM3 · Vulkan · driver 550.54");
        assert!(!is_software(Some(&gpu)));
        let soft = adapter(true).describe();
        assert!(soft.starts_with("software adapter (not a GPU timing): llvmpipe"));
        assert!(is_software(Some(&soft)));
        assert!(!is_software(None));
    }
}
