#pragma once
// Helpers shared by the GUI test suites (unit, integration, e2e).
#include <QCoreApplication>
#include <QTest>
#include <filesystem>
#include <functional>
#include <string>

namespace cordon::gui::test {

// A fresh folder under the suite's temp root.
std::filesystem::path tempDir(const std::string& name);
void writeFile(const std::filesystem::path& p, const std::string& content);
std::string readFile(const std::filesystem::path& p);
// Spins the event loop until pred holds or timeout passes.
bool waitFor(const std::function<bool()>& pred, int timeoutMs);

}  // namespace cordon::gui::test
