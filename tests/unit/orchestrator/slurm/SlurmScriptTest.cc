// Rendering sbatch scripts: placeholders from the payload, option keys checked against
// their form, free text quoted as one shell word and kept out of #SBATCH lines; the
// shipped DDP template field by field.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "orchestrator/slurm/SlurmScript.h"

using namespace dspy::orchestrator::slurm;
using dspy::Payload;

namespace {

std::string shipped(const std::string& name) {
  std::ifstream in(std::string(DSPY_SOURCE_DIR) + "/deploy/slurm/" + name + ".sbatch");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool hasLine(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    while (!l.empty() && (l.back() == ' ' || l.back() == '\\')) l.pop_back();
    if (l == line) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("placeholders take the payload's value or their default; plain shell variables stay", "[slurm]") {
  const std::string t = "#SBATCH --nodes=${NODES:-1}\necho ${SKILL:-none} ${SLURM_JOB_ID} $HOME\n";
  auto r = renderTemplate("t", t, Payload{{"skill", "math"}});
  REQUIRE(r.ok());
  CHECK(r.value().script == "#SBATCH --nodes=1\necho 'math' ${SLURM_JOB_ID} $HOME\n");
  auto r2 = renderTemplate("t", t, Payload{{"nodes", "4"}});
  CHECK(r2.value().script == "#SBATCH --nodes=4\necho 'none' ${SLURM_JOB_ID} $HOME\n");
}

TEST_CASE("a required placeholder without a value names the key and the line", "[slurm]") {
  auto r = renderTemplate("t", "a\nrun ${SKILL:?the skill to train}\n", Payload{});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find("line 2") != std::string::npos);
  CHECK(r.error().find("'skill'") != std::string::npos);
  CHECK(r.error().find("the skill to train") != std::string::npos);
}

TEST_CASE("free text is one quoted shell word, whatever it holds", "[slurm]") {
  for (const std::string evil : {"$(touch /tmp/x)", "`touch /tmp/x`", "a'; touch /tmp/x; echo '", "x\" && rm -rf /",
                                 "${HOME}", "a b c", "\\'"}) {
    auto r = renderTemplate("t", "echo ${METHOD:-m}\n", Payload{{"method", evil}});
    REQUIRE(r.ok());
    CHECK(r.value().script == "echo " + shellQuote(evil) + "\n");
  }
  CHECK(shellQuote("it's") == "'it'\\''s'");
}

TEST_CASE("no value can add a line, a directive or an option of another form", "[slurm]") {
  // A newline in free text would start a new script line.
  CHECK_FALSE(renderTemplate("t", "echo ${METHOD:-m}\n", Payload{{"method", "x\n#SBATCH --wrap=id"}}).ok());
  CHECK_FALSE(renderTemplate("t", "echo ${METHOD:-m}\n", Payload{{"method", "x\rid"}}).ok());
  // Free text may not fill an #SBATCH line at all.
  auto d = renderTemplate("t", "#SBATCH --comment=${NOTE:-x}\n", Payload{{"note", "fine"}});
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().find("#SBATCH") != std::string::npos);
  // Option keys must have their option's form.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"job_name", "x --wrap=id"},  {"partition", "debug;id"},   {"account", "a b"},
      {"qos", "q\nx"},              {"gres", "gpu:1 --wrap=x"},  {"gpus", "1;id"},
      {"gpus_per_node", "-1"},      {"nodes", "1 --wrap=id"},    {"ntasks", "0"},
      {"ntasks_per_node", "1x"},    {"cpus_per_task", "$(id)"},  {"mem", "16G;id"},
      {"time_limit", "1 && id"},    {"array", "1-3;id"},         {"dependency", "afterok:1;id"},
      {"master_port", "80"},        {"nproc_per_node", "`id`"},  {"max_steps", "1e9"}};
  for (const auto& [key, value] : bad) {
    INFO(key << " = " << value);
    CHECK_FALSE(checkOption(key, value).ok());
    const bool sbatch_option = key != "master_port" && key != "nproc_per_node" && key != "max_steps";
    if (sbatch_option) CHECK_FALSE(sbatchOptions(Payload{{key, value}}).ok());
  }
  const std::vector<std::pair<std::string, std::string>> good = {
      {"job_name", "train-7.b"}, {"partition", "gpu,debug"}, {"gres", "gpu:a100:2"}, {"gpus", "a100:8"},
      {"nodes", "2-4"},          {"mem", "64G"},             {"time_limit", "1-12:00:00"}, {"array", "0-15%4"},
      {"dependency", "afterok:12:13,afterany:14"}, {"master_port", "29500"}, {"time_limit", "90"}};
  for (const auto& [key, value] : good) {
    INFO(key << " = " << value);
    CHECK(checkOption(key, value).ok());
  }
}

TEST_CASE("sbatch options come from the payload's option keys", "[slurm]") {
  auto o = sbatchOptions(Payload{{"partition", "debug"}, {"array", "1-3"}, {"timeout_seconds", "61"}, {"skill", "x"}});
  REQUIRE(o.ok());
  CHECK(o.value() == std::vector<std::string>{"--partition=debug", "--array=1-3", "--time=2"});
  auto t = sbatchOptions(Payload{{"time_limit", "5"}, {"timeout_seconds", "61"}});
  CHECK(t.value() == std::vector<std::string>{"--time=5"});
  CHECK_FALSE(sbatchOptions(Payload{{"timeout_seconds", "soon"}}).ok());
}

TEST_CASE("the multi-node DDP template, field by field", "[slurm]") {
  const std::string t = shipped("ddp");
  REQUIRE_FALSE(t.empty());
  const Payload p{{"nodes", "4"},        {"gpus_per_node", "8"},  {"cpus_per_task", "16"},   {"mem", "128G"},
                  {"time_limit", "12:00:00"}, {"master_port", "29600"}, {"dataset", "s3://data/set a"},
                  {"method", "sft"},     {"skill", "math"},       {"max_steps", "5000"},    {"job_name", "ddp-run"},
                  {"train_script", "train_ddp.py"}};
  auto r = renderTemplate("ddp", t, p);
  REQUIRE(r.ok());
  const std::string& s = r.value().script;
  CHECK(hasLine(s, "#SBATCH --job-name=ddp-run"));
  CHECK(hasLine(s, "#SBATCH --nodes=4"));
  CHECK(hasLine(s, "#SBATCH --ntasks-per-node=1"));
  CHECK(hasLine(s, "#SBATCH --gpus-per-node=8"));
  CHECK(hasLine(s, "#SBATCH --cpus-per-task=16"));
  CHECK(hasLine(s, "#SBATCH --mem=128G"));
  CHECK(hasLine(s, "#SBATCH --time=12:00:00"));
  CHECK(hasLine(s, "export MASTER_PORT=29600"));
  CHECK(hasLine(s, "  --nnodes=4"));
  CHECK(hasLine(s, "  --nproc_per_node=8"));
  CHECK(hasLine(s, "  --rdzv_backend=c10d"));
  CHECK(hasLine(s, "  'train_ddp.py'"));
  CHECK(hasLine(s, "  --method 'sft'"));
  CHECK(hasLine(s, "  --skill 'math'"));
  CHECK(hasLine(s, "  --dataset 's3://data/set a'"));
  CHECK(hasLine(s, "  --max-steps 5000"));
  CHECK_FALSE(std::regex_search(s, std::regex(R"(\$\{[A-Z][A-Z0-9_]*:[-?])")));  // nothing of ours left unfilled
  CHECK(hasLine(s, "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK-1}"));      // the shell's own default stays
  // Without the required dataset the template refuses.
  CHECK_FALSE(renderTemplate("ddp", t, Payload{{"nodes", "2"}}).ok());
  // The other shipped templates render with their required keys.
  CHECK(renderTemplate("rl", shipped("rl"), Payload{{"method", "grpo"}, {"skill", "math"}}).ok());
  CHECK(renderTemplate("methodology", shipped("methodology"), Payload{{"skill", "math"}}).ok());
  CHECK(renderTemplate("command", shipped("command"), Payload{{"command", "echo hi"}}).ok());
  CHECK_FALSE(renderTemplate("command", shipped("command"), Payload{}).ok());
}

TEST_CASE("file names and markers for any task id", "[slurm]") {
  CHECK(safeName("a/../b c") != safeName("a/../b_c"));
  CHECK(safeName("../x").find('/') == std::string::npos);
  CHECK(safeName("..").front() != '.');
  CHECK(jobMarker("t", 1) != jobMarker("t", 2));
  CHECK(jobMarker("t", 1).rfind("dspy:", 0) == 0);
}
