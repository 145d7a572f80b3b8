// The registry refuses a stage type whose prefix is not the family (folder) registering it.
#include <gtest/gtest.h>

#include "pipeline/error.hpp"
#include "pipeline/stage.hpp"

namespace lvmflow {
namespace {

StageInfo info_of(const std::string& type) {
  StageInfo info;
  info.type = type;
  info.make = [](const Params&) -> std::unique_ptr<Stage> { return nullptr; };
  return info;
}

std::string add_error(StageRegistry& r, const std::string& type, const std::string& family) {
  try {
    r.add(info_of(type), family);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(StageRegistry, RefusesATypeWhosePrefixIsNotItsFamily) {
  StageRegistry r;
  EXPECT_EQ(add_error(r, "encode.gtr_t5", "encode"), "(no error)");
  const std::string e = add_error(r, "seq.window", "window");
  EXPECT_NE(e.find("stage type 'seq.window' is registered by family 'window' (stages/window/)"), std::string::npos) << e;
  EXPECT_NE(e.find("name it 'window.<name>'"), std::string::npos) << e;
  EXPECT_NE(add_error(r, "encoder.x", "encode").find("registered by family 'encode'"), std::string::npos);
  EXPECT_NE(add_error(r, "encode.", "encode").find("registered by family"), std::string::npos);
  EXPECT_NE(add_error(r, "encode.gtr_t5", "encode").find("registered twice"), std::string::npos);
  EXPECT_EQ(r.all().size(), 1u);
}

TEST(StageRegistry, FamilyScopeNamesTheFamilyOfPlainAdds) {
  StageRegistry r;
  EXPECT_THROW(r.add(info_of("seq.window")), Error);   // no family: refused
  {
    StageRegistry::FamilyScope family(r, "seq");
    r.add(info_of("seq.window"));
    EXPECT_THROW(r.add(info_of("lvm.train")), Error);
  }
  EXPECT_THROW(r.add(info_of("seq.other")), Error);   // the scope has ended
  ASSERT_NE(r.find("seq.window"), nullptr);
}

TEST(StageRegistry, EveryLinkedTypeIsNamedAfterItsFamily) {
  // register_all.cpp (generated) registers each folder inside its FamilyScope; building the
  // registry would have thrown otherwise. Spot-check that the families are all there.
  const StageRegistry& r = stage_registry();
  for (const char* type : {"ingest.wikipedia", "chunk.text", "encode.gtr_t5", "encode.hashed", "seq.window",
                           "lvm.train", "retrieve.index", "decode.vec2text", "decode.nearest"})
    EXPECT_NE(r.find(type), nullptr) << type;
}

}  // namespace
}  // namespace lvmflow
