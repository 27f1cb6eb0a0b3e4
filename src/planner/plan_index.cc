#include "planner/plan_index.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <string_view>

namespace testlooper::planner {

uint32_t PlanIndex::Interned::id(const std::string& s) {
  auto [it, inserted] = ids.try_emplace(s, static_cast<uint32_t>(text.size()));
  if (inserted) text.push_back(s);
  return it->second;
}

PlanIndex::PlanIndex(const std::vector<const PlannedCommit*>& commits) {
  for (const PlannedCommit* c : commits) put(c);
}

void PlanIndex::put(const PlannedCommit* commit) {
  remove(commit->repo, commit->sha);
  CommitEntry& e = commits_[{commit->repo, commit->sha}];
  e.commit = commit;
  const size_t n = commit->objects.size();
  for (size_t i = 0; i < n; ++i) {
    // Indexing every commit touches each object once, so memory, not work, bounds it: asking
    // for the objects ahead made a full recompute of 10,000 commits x 200 tests 15% faster here
    // (planner_bench; 24 ahead did better than 4 or 12).
    if (i + 24 < n) __builtin_prefetch(&commit->objects[i + 24].kind);
    const PlannedObject& o = commit->objects[i];
    // Sizes first: no memcmp call for most objects, as `o.kind != "build"` made (a third of a
    // full recompute's time over 2M objects).
    if (std::string_view(o.kind) != "build") continue;
    builds_[o.hash].emplace(std::make_tuple(commit->repo, commit->sha, i), Located{commit, &o});
    e.builds.emplace_back(o.hash, i);
  }
}

void PlanIndex::remove(const std::string& repo, const std::string& sha) {
  auto it = commits_.find(KeyView(repo, sha));
  if (it == commits_.end()) return;
  for (const auto& [hash, i] : it->second.builds) {
    auto b = builds_.find(hash);
    if (b == builds_.end()) continue;
    b->second.erase({repo, sha, i});
    if (b->second.empty()) builds_.erase(b);
  }
  commits_.erase(it);
}

const PlanIndex::CommitEntry* PlanIndex::entry(std::string_view repo, std::string_view sha) const {
  auto it = commits_.find(KeyView(repo, sha));
  return it == commits_.end() ? nullptr : &it->second;
}

const PlannedCommit* PlanIndex::commit(std::string_view repo, std::string_view sha) const {
  const CommitEntry* e = entry(repo, sha);
  return e == nullptr ? nullptr : e->commit;
}

const PlannedObject* PlanIndex::object_named(const CommitEntry& e, std::string_view name) {
  if (!e.names) {
    e.names = std::make_unique<std::unordered_map<std::string_view, const PlannedObject*>>();
    // The first object of a name wins, as a lookup in the commit's order would find it.
    for (const auto& o : e.commit->objects) e.names->emplace(o.name, &o);
  }
  auto o = e.names->find(name);
  return o == e.names->end() ? nullptr : o->second;
}

std::optional<PlanIndex::Located> PlanIndex::locate(std::string_view repo, std::string_view sha,
                                                    std::string_view name) const {
  const CommitEntry* e = entry(repo, sha);
  const PlannedObject* o = e == nullptr ? nullptr : object_named(*e, name);
  if (o == nullptr) return std::nullopt;
  return Located{e->commit, o};
}

const PlannedObject* PlanIndex::object(const PlannedCommit& commit, std::string_view name) const {
  const CommitEntry* e = entry(commit.repo, commit.sha);
  return e == nullptr || e->commit != &commit ? nullptr : object_named(*e, name);
}

const std::vector<uint32_t>& PlanIndex::by_name(const PlannedCommit& commit) const {
  static const std::vector<uint32_t> kNone;
  const CommitEntry* e = entry(commit.repo, commit.sha);
  if (e == nullptr || e->commit != &commit) return kNone;
  if (!e->by_name) {
    e->by_name = std::make_unique<std::vector<uint32_t>>(commit.objects.size());
    std::iota(e->by_name->begin(), e->by_name->end(), 0u);
    std::stable_sort(e->by_name->begin(), e->by_name->end(), [&commit](uint32_t a, uint32_t b) {
      return commit.objects[a].name < commit.objects[b].name;
    });
  }
  return *e->by_name;
}

std::optional<PlanIndex::Located> PlanIndex::build(const std::string& hash) const {
  auto it = builds_.find(hash);
  if (it == builds_.end()) return std::nullopt;
  return it->second.begin()->second;
}

const std::vector<PlanIndex::Entry>& PlanIndex::entries(const PlannedCommit& commit,
                                                        const PlannedCommit* like) const {
  static const std::vector<Entry> kNone;
  const CommitEntry* found = entry(commit.repo, commit.sha);
  if (found == nullptr || found->commit != &commit) return kNone;
  const CommitEntry& e = *found;
  if (e.entries) return *e.entries;
  const CommitEntry* other = like == nullptr ? nullptr : entry(like->repo, like->sha);
  const std::vector<Entry>* same = other != nullptr && other->commit == like && other->entries &&
                                           like->objects.size() == commit.objects.size()
                                       ? other->entries.get()
                                       : nullptr;
  e.entries = std::make_unique<std::vector<Entry>>();
  e.entries->reserve(commit.objects.size());
  for (size_t k = 0; k < commit.objects.size(); ++k) {
    const PlannedObject& o = commit.objects[k];
    const bool test = std::string_view(o.kind) == "test";
    // Comparing two strings costs less than hashing them into a table of every identity.
    if (same != nullptr && (*same)[k].test == test && like->objects[k].hash == o.hash &&
        like->objects[k].name == o.name) {
      e.entries->push_back((*same)[k]);
      continue;
    }
    e.entries->push_back({names_.id(o.name), hashes_.id(o.hash), test});
  }
  return *e.entries;
}

void PlanIndex::progress_changed(const std::string& hash) {
  auto it = hashes_.ids.find(hash);
  if (it != hashes_.ids.end() && it->second < progress_current_.size())
    progress_current_[it->second] = 0;
}

const HashProgress& PlanIndex::progress_of(uint32_t id, const ProgressMap& progress) const {
  if (id >= progress_current_.size()) {
    progress_.resize(hashes_.text.size());
    progress_current_.resize(hashes_.text.size(), 0);
  }
  if (!progress_current_[id]) {
    auto p = progress.find(hashes_.text[id]);
    progress_[id] = p == progress.end() ? HashProgress{} : p->second;
    progress_current_[id] = 1;
  }
  return progress_[id];
}

std::map<std::string, std::vector<stats::CommitEvidence>> failing_test_histories(
    const std::vector<std::string>& oldest_first, const std::string& repo, const PlanIndex& index,
    const ProgressMap& progress) {
  const size_t n = oldest_first.size();
  std::vector<const std::vector<PlanIndex::Entry>*> at(n, nullptr);
  const PlannedCommit* before = nullptr;
  for (size_t i = 0; i < n; ++i) {
    const PlannedCommit* c = index.commit(repo, oldest_first[i]);
    if (c == nullptr || !c->reachable) continue;
    at[i] = &index.entries(*c, before);
    before = c;
  }
  std::vector<char> wanted(index.name_count(), 0);  // tests with a failure on the history
  bool any = false;
  const std::vector<PlanIndex::Entry>* last = nullptr;  // the last commit looked at
  for (size_t i = 0; i < n; ++i) {
    if (at[i] == nullptr) continue;
    const std::vector<PlanIndex::Entry>& entries = *at[i];
    // Consecutive commits mostly hold the same objects in the same places: an entry equal to the
    // one in its place in the commit before was looked at there (its progress had no failure, or
    // its name would be wanted by now), so only the entries that changed are looked up.
    const bool aligned = last != nullptr && last->size() == entries.size();
    for (size_t k = 0; k < entries.size(); ++k) {
      const PlanIndex::Entry& e = entries[k];
      if (!e.test || wanted[e.name]) continue;
      if (aligned && (*last)[k].hash == e.hash && (*last)[k].name == e.name && (*last)[k].test)
        continue;
      if (index.progress_of(e.hash, progress).failures > 0) wanted[e.name] = any = true;
    }
    last = &entries;
  }
  std::map<std::string, std::vector<stats::CommitEvidence>> out;
  if (!any) return out;
  std::map<uint32_t, std::vector<stats::CommitEvidence>*> by_name;
  std::set<std::pair<uint32_t, uint32_t>> placed;  // (name, identity) already placed
  for (size_t i = 0; i < n; ++i) {
    if (at[i] == nullptr) continue;
    for (const auto& e : *at[i]) {
      if (!e.test || !wanted[e.name]) continue;
      auto [b, inserted] = by_name.try_emplace(e.name, nullptr);
      if (inserted) {
        b->second = &out[index.name_of(e.name)];
        b->second->resize(n);
        for (size_t j = 0; j < n; ++j) (*b->second)[j] = {oldest_first[j], "", false, 0, 0};
      }
      stats::CommitEvidence& c = (*b->second)[i];
      c.identity = index.hash_of(e.hash);
      c.present = true;
      if (placed.emplace(e.name, e.hash).second) {
        const HashProgress& p = index.progress_of(e.hash, progress);
        c.runs = p.runs;
        c.failures = p.failures;
      }
    }
  }
  return out;
}

}  // namespace testlooper::planner
