#pragma once
#include <string>

namespace cordon::runtime {
int run_probe(const std::string& dir);
}
