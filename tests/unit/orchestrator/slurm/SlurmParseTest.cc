// What Slurm's commands print (taken from Slurm 22.05 on the test cluster) becomes job
// states; every state word maps to a task outcome; malformed output is an error.
#include <catch2/catch.hpp>

#include "orchestrator/slurm/SlurmParse.h"

using namespace dspy::orchestrator::slurm;

TEST_CASE("squeue lines: plain jobs and array elements", "[slurm]") {
  const std::string out =
      "15|15|PENDING|Resources|2026-11-27T09:05:02|N/A|N/A|\n"
      "14|14|RUNNING|None|2026-11-27T09:05:02|2026-11-27T09:05:03|NONE|vm\n"
      "19|19_3|COMPLETED|None|2026-11-27T09:05:02|2026-11-27T09:05:04|2026-11-27T09:05:05|vm\n";
  auto r = parseSqueue(out);
  REQUIRE(r.ok());
  REQUIRE(r.value().size() == 3);
  CHECK(r.value()[0].job_id == "15");
  CHECK(r.value()[0].state == "PENDING");
  CHECK(r.value()[0].reason == "Resources");
  CHECK(r.value()[0].start_ms == 0);
  CHECK(r.value()[1].reason.empty());
  CHECK(r.value()[1].nodes == "vm");
  CHECK(r.value()[1].start_ms > r.value()[1].submit_ms - 1);
  CHECK(r.value()[2].job_id == "19");
  CHECK(r.value()[2].element == "19_3");
  CHECK(parseSqueue("").value().empty());
}

TEST_CASE("squeue output of an unexpected shape is an error, not a guess", "[slurm]") {
  CHECK_FALSE(parseSqueue("15|PENDING\n").ok());
  CHECK_FALSE(parseSqueue("abc|15|PENDING|None|N/A|N/A|N/A|\n").ok());
  CHECK_FALSE(parseSqueue("15|15||None|N/A|N/A|N/A|\n").ok());
  CHECK_FALSE(parseSqueue("15|15|RUNNING|None|N/A|N/A|N/A|vm|extra\n").ok());
}

TEST_CASE("scontrol -o lines give state, exit code, reason and times", "[slurm]") {
  const std::string line =
      "JobId=13 JobName=wrap UserId=root(0) GroupId=root(0) JobState=FAILED Reason=NonZeroExitCode "
      "Dependency=(null) ExitCode=3:0 RunTime=00:00:00 SubmitTime=2026-11-27T09:05:02 StartTime=2026-11-27T09:05:03 "
      "EndTime=2026-11-27T09:05:03 NodeList=vm WorkDir=/tmp/with space StdOut=/tmp/s1.out Power=\n"
      "JobId=21 ArrayJobId=19 ArrayTaskId=2 JobName=wrap JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 "
      "SubmitTime=2026-11-27T09:05:02 StartTime=2026-11-27T09:05:03 EndTime=2026-11-27T09:06:03 NodeList=vm\n";
  auto r = parseScontrol(line);
  REQUIRE(r.ok());
  REQUIRE(r.value().size() == 2);
  const JobState& a = r.value()[0];
  CHECK(a.job_id == "13");
  CHECK(a.state == "FAILED");
  CHECK(a.reason == "NonZeroExitCode");
  REQUIRE(a.exit_code);
  CHECK(*a.exit_code == 3);
  CHECK(a.end_ms - a.submit_ms == 1000);
  const JobState& b = r.value()[1];
  CHECK(b.job_id == "19");  // the array's id: what sbatch returned
  CHECK(b.element == "19_2");
  CHECK(*b.exit_signal == 15);
  CHECK_FALSE(parseScontrol("JobName=x JobState=RUNNING\n").ok());
}

TEST_CASE("sacct -P lines, 'CANCELLED by 0' counts by its first word", "[slurm]") {
  auto r = parseSacct("31|31|CANCELLED by 0|0:15|2026-11-27T09:05:02|2026-11-27T09:05:03|2026-11-27T09:05:09|None|vm\n"
                      "40|38_2|OUT_OF_MEMORY|0:125|2026-11-27T09:05:02|Unknown|Unknown|None|None assigned\n");
  REQUIRE(r.ok());
  CHECK(r.value()[0].state == "CANCELLED");
  CHECK(r.value()[1].job_id == "38");
  CHECK(r.value()[1].start_ms == 0);
  CHECK(r.value()[1].nodes.empty());
  CHECK_FALSE(parseSacct("31|31|COMPLETED\n").ok());
}

TEST_CASE("every Slurm job state has a meaning", "[slurm]") {
  for (const char* s : {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}) {
    CHECK(meaningOf(s).phase == Phase::Queued);
    CHECK_FALSE(meaningOf(s).terminal);
  }
  for (const char* s : {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}) {
    CHECK(meaningOf(s).phase == Phase::Running);
    CHECK_FALSE(meaningOf(s).terminal);
  }
  CHECK(meaningOf("COMPLETED").phase == Phase::Succeeded);
  CHECK(meaningOf("CANCELLED by 0").phase == Phase::Cancelled);
  for (const char* s : {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "DEADLINE", "SPECIAL_EXIT"}) {
    CHECK(meaningOf(s).phase == Phase::Failed);
    CHECK(meaningOf(s).terminal);
    CHECK_FALSE(meaningOf(s).retryable);
  }
  for (const char* s : {"NODE_FAIL", "BOOT_FAIL", "PREEMPTED", "LAUNCH_FAILED"}) {
    CHECK(meaningOf(s).terminal);
    CHECK(meaningOf(s).retryable);  // the cluster's fault: another job may succeed
  }
  CHECK(meaningOf("SOMETHING_NEW").phase == Phase::Unknown);
  CHECK_FALSE(meaningOf("SOMETHING_NEW").terminal);
  CHECK(meaningOf("COMPLETING+").phase == Phase::Running);
}

TEST_CASE("an array job runs while any element runs and succeeds only if all did", "[slurm]") {
  JobState a{.job_id = "7", .element = "7_1", .state = "COMPLETED"};
  JobState b{.job_id = "7", .element = "7_2", .state = "RUNNING"};
  CHECK(aggregate("7", {&a, &b}).state == "RUNNING");
  b.state = "COMPLETED";
  CHECK(aggregate("7", {&a, &b}).state == "COMPLETED");
  b.state = "FAILED";
  b.exit_code = 4;
  b.reason = "NonZeroExitCode";
  const JobState agg = aggregate("7", {&a, &b});
  CHECK(agg.state == "FAILED");
  CHECK(*agg.exit_code == 4);
  CHECK(agg.reason.find("7_2") != std::string::npos);
}

TEST_CASE("sbatch's answer, exit codes and times", "[slurm]") {
  CHECK(parseJobId("123\n") == std::optional<std::string>("123"));
  CHECK(parseJobId("sbatch: warning: something\n124;cluster\n") == std::optional<std::string>("124"));
  CHECK_FALSE(parseJobId("Submitted batch job 12\n"));
  CHECK_FALSE(parseJobId(""));
  int c = 0, s = 0;
  CHECK(parseExitCode("3:0", &c, &s));
  CHECK(c == 3);
  CHECK_FALSE(parseExitCode("3", &c, &s));
  CHECK_FALSE(parseExitCode("x:0", &c, &s));
  CHECK(parseSlurmTime("N/A") == 0);
  CHECK(parseSlurmTime("2026-13-01T00:00:00") == 0);
  CHECK(parseSlurmTime("2026-11-27T09:05:03") - parseSlurmTime("2026-11-27T09:05:02") == 1000);
  CHECK(isUnreachable("slurm_load_jobs error: Unable to contact slurm controller (connect failure)"));
  CHECK_FALSE(isUnreachable("sbatch: error: invalid partition specified: nosuch"));
}
