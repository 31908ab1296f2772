#pragma once
// A small JSON reader that reads a request body the way dockerd (Go's encoding/json)
// reads it, so the policy sees exactly the values dockerd will act on:
//  - strings: \u escapes (surrogate pairs; a lone surrogate becomes U+FFFD), invalid
//    UTF-8 bytes each become U+FFFD, raw control characters are an error;
//  - object keys are matched to struct fields as Go matches them: an exact match or a
//    case-insensitive match under Unicode simple folding ("Bind\u017f" reaches "Binds",
//    "Networ\u212aMode" reaches "NetworkMode");
//  - numbers and literals follow the strict JSON grammar Go's scanner enforces;
//  - nesting is limited (depth_limit), and trailing data after the value is an error
//    (Go's Decoder would silently ignore it; we refuse it instead).
// Every value remembers its byte span in the source so a body can be rewritten in place.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cordon::gojson {

enum class Type { null, boolean, number, string, array, object };

struct Member;

struct Value {
    Type type = Type::null;
    bool boolean = false;
    std::string text;  // decoded string, or the number's literal text
    std::vector<Value> items;
    std::vector<Member> members;  // in source order
    std::size_t begin = 0;        // byte span of the value in the source
    std::size_t end = 0;
    // For an object member's value: the byte offset of its key's opening quote (so the
    // whole member can be cut out of the source).
    std::size_t key_begin = 0;

    bool is_null() const { return type == Type::null; }
    bool is_object() const { return type == Type::object; }
    bool is_array() const { return type == Type::array; }
    bool is_string() const { return type == Type::string; }
    bool is_bool() const { return type == Type::boolean; }
    bool is_number() const { return type == Type::number; }
};

// An object member (named like std::pair's fields; binds as `auto& [key, value]`).
struct Member {
    std::string first;
    Value second;
};

class ParseError : public std::runtime_error {
  public:
    ParseError(const std::string& what, std::size_t offset)
        : std::runtime_error(what + " at byte " + std::to_string(offset)), offset_(offset) {}
    std::size_t offset() const { return offset_; }

  private:
    std::size_t offset_;
};

struct Limits {
    std::size_t depth_limit = 64;
    // Refuse two keys in one object whose decoded bytes are identical. (Keys that only
    // fold to the same struct field are reported by lookup(); see field()).
    bool refuse_exact_duplicates = true;
};

// Parses one JSON value (surrounded by optional whitespace). Throws ParseError.
Value parse(std::string_view text, const Limits& limits = {});

// True when the (UTF-8) key would select the Go struct field named `field` (ASCII)
// by encoding/json's rules: exact, or equal under simple case folding.
bool key_matches_field(std::string_view key, std::string_view field);

// Every member of `object` whose key selects the struct field `field`.
std::vector<const Value*> lookup(const Value& object, std::string_view field);

// Go's zero value test used for fields the policy does not know: null, false, 0, "",
// [], {}, or an array/object holding only zero values.
bool is_zero(const Value& v);

// JSON-encodes a string (for rewriting a value in place).
std::string quote(std::string_view s);

}  // namespace cordon::gojson
