#pragma once
// Reads a PyTorch zip checkpoint (pytorch_model.bin as written by torch.save(state_dict))
// into named tensors. libtorch 1.13's torch::jit::pickle_load cannot read these (it lacks the
// SETITEM opcode an OrderedDict with _metadata uses), so this is a small restricted
// unpickler: it understands dicts, tuples, lists, scalars, strings and tensor rebuilds, and
// refuses every other Python global, so loading a checkpoint never runs foreign code.
// Ours because no Debian C++ library reads pickles (libtorch's own reader is the one that
// fails here), and a restricted reader is what keeps untrusted checkpoints safe.
// Includes torch headers: only for torch translation units.
#include <filesystem>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace lvmflow {

// Throws lvmflow::Error naming the file for non-zip (legacy) checkpoints, damaged archives,
// unsupported pickle content, or a top level that is not a dict of tensors.
std::map<std::string, at::Tensor> load_torch_state_dict(const std::filesystem::path& path);

}  // namespace lvmflow
