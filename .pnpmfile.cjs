// node-llama-cpp lists every GPU build as an optional dependency; pnpm would download the CUDA and Vulkan
// binaries (hundreds of MiB) on any x64 Linux machine. The platform's workers run on CPU unless a deployment
// opts in with LLMAAS_GPU_BUILDS=1, so the GPU builds are dropped at resolution time.
const GPU_BUILD = /^@node-llama-cpp\/.*-(cuda|cuda-ext|vulkan|metal)$/;

function readPackage(pkg) {
  if (pkg.name === "node-llama-cpp" && process.env.LLMAAS_GPU_BUILDS !== "1" && pkg.optionalDependencies) {
    for (const name of Object.keys(pkg.optionalDependencies)) {
      if (GPU_BUILD.test(name)) delete pkg.optionalDependencies[name];
    }
  }
  return pkg;
}

module.exports = { hooks: { readPackage } };
