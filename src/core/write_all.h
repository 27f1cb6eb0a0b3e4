// Writing a whole buffer to a file descriptor, resuming after short writes and signals.
#pragma once

#include <string_view>

namespace testlooper {

// Writes all of `data` to `fd`. False (errno set) when a write fails or writes nothing (a full
// disk); what was written before stays written.
bool write_all(int fd, std::string_view data);

}  // namespace testlooper
