#include <gtest/gtest.h>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"

namespace lvmflow {
namespace {

TEST(Json, ParsesHuggingFaceStyleConfig) {
  Json j = Json::parse(R"({"d_model": 768, "layer_norm_epsilon": 1e-06, "is_gated_act": false,
      "architectures": ["T5EncoderModel"], "name": "gtr\u002dt5 \"base\" \ud83d\ude00",
      "dropout_rate": 0.1, "nothing": null, "neg": -12})");
  EXPECT_EQ(j.at("d_model").as_int(), 768);
  EXPECT_TRUE(j.at("d_model").is_integer());
  EXPECT_DOUBLE_EQ(j.at("layer_norm_epsilon").as_double(), 1e-6);
  EXPECT_FALSE(j.at("layer_norm_epsilon").is_integer());
  EXPECT_FALSE(j.at("is_gated_act").as_bool());
  EXPECT_EQ(j.at("architectures").as_array().at(0).as_string(), "T5EncoderModel");
  EXPECT_EQ(j.at("name").as_string(), "gtr-t5 \"base\" \xF0\x9F\x98\x80");
  EXPECT_TRUE(j.at("nothing").is_null());
  EXPECT_EQ(j.at("neg").as_int(), -12);
  EXPECT_EQ(j.find("absent"), nullptr);
}

TEST(Json, DumpRoundTrips) {
  Json j;
  j["b"] = Json(Json::Array{Json(1), Json(2.5), Json("x\ny"), Json(true), Json()});
  j["a"] = Json(std::int64_t{1} << 53);
  j["c"] = Json(0.1);
  std::string text = j.dump();
  EXPECT_EQ(text, R"({"a":9007199254740992,"b":[1,2.5,"x\ny",true,null],"c":0.1})");
  EXPECT_EQ(Json::parse(text).dump(), text);
  EXPECT_EQ(Json::parse(j.dump(2)).dump(), text);
}

TEST(Json, ErrorsNameWhereAndOffset) {
  for (const char* bad : {"{", "{\"a\" 1}", "[1,]", "tru", "\"abc", "{\"a\":1} x", "01x", "-"}) {
    SCOPED_TRACE(bad);
    try {
      Json::parse(bad, "config.json");
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("config.json: invalid JSON at offset"), std::string::npos)
          << e.what();
    }
  }
  Json j = Json::parse(R"({"n": 1.5, "s": "x"})");
  EXPECT_THROW(j.at("n").as_int("config.json: n"), Error);
  EXPECT_THROW(j.at("s").as_int(), Error);
  EXPECT_THROW(j.at("missing", "config.json"), Error);
  EXPECT_EQ(Json::parse("12.0").as_int(), 12);
  std::string deep(1000, '[');
  EXPECT_THROW(Json::parse(deep), Error);
}

}  // namespace
}  // namespace lvmflow
