// Limits on the web page: the user's storage, quota and use of the day, and the errors
// the limits give, in words a user understands.

export function formatBytes(n) {
  const units = [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]];
  for (const [unit, size] of units) if (n >= size) return `${(n / size).toFixed(1)} ${unit}`;
  return `${n} bytes`;
}

function plural(n, one, many) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

// What an error code means to the person who met it; the API's own message otherwise.
export function explainError(code, message, details = {}) {
  details = details || {};
  switch (code) {
    case "storage_quota_exceeded":
      if (details.quotaBytes === undefined) return `Your storage is full. Delete some files to make room. (${message})`;
      return `Your storage is full: ${formatBytes(details.usedBytes)} of ${formatBytes(details.quotaBytes)} and `
        + `${details.usedFiles} of ${details.quotaFiles} files are used, and this needs ${formatBytes(details.size)} more. `
        + "Delete some files to make room.";
    case "rate_limited":
      return `You are asking for replies and images faster than allowed. Try again in ${plural(details.retryAfterSeconds || 60, "second", "seconds")}.`;
    case "model_not_allowed":
      return `That model is not available here. You may use: ${(details.allowed || []).join(", ")}.`;
    case "attachments_too_large":
      return "The files attached to this message are too large for one reply. Send fewer or smaller files.";
    case "image_too_large":
      return "The picture the model made was too large to keep. Try a smaller size.";
    case "file_too_large":
      return `This file is too large to upload. (${message})`;
    case "account_erasing":
      return "This account is being deleted: nothing more can be saved in it.";
    case "export_running":
      return "An export of your data is already being made. Wait for it to be ready.";
    case "too_many_attachments":
      return `A message can carry only so many files. (${message})`;
    default:
      return message;
  }
}

export function renderUsage(usage) {
  const { storage, generation, limits } = usage;
  const meter = document.getElementById("storage-meter");
  meter.max = Math.max(storage.quotaBytes, 1);
  meter.value = Math.min(storage.bytes, meter.max);
  const full = storage.bytes >= storage.quotaBytes || storage.files >= storage.quotaFiles;
  document.getElementById("usage").classList.toggle("full", full);
  document.getElementById("storage-text").textContent =
    `${formatBytes(storage.bytes)} of ${formatBytes(storage.quotaBytes)} · ${storage.files} of ${plural(storage.quotaFiles, "file", "files")}`;
  const tokens = generation.promptTokens + generation.completionTokens;
  document.getElementById("today-text").textContent =
    `Today: ${plural(generation.replies, "reply", "replies")}, ${plural(generation.images, "image", "images")}, `
    + `${plural(tokens, "token", "tokens")}`;
  document.getElementById("rate-text").textContent =
    `Up to ${plural(limits.generationsPerMinute, "reply or image", "replies or images")} a minute`;
}

export async function refreshUsage(client) {
  try {
    renderUsage(await client.usage());
  } catch (error) {
    // The panel keeps what it showed; a failed refresh is not worth a toast.
  }
}
