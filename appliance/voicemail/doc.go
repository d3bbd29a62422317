// Package voicemail owns the node's mailboxes: the recording policy of a
// deposit (Recording: at most MaxMessage, ended by Silence of silence,
// trailing silence trimmed, messages with less than MinVoice of voice
// dropped), the message audio on the data disk (<dir>/<sha256>.wav,
// written to a temporary file, synced and renamed), the messages' state
// through the store (store.Store.PutLocalVoicemail, MarkVoicemail), and
// telling whoever subscribed that a mailbox changed (message waiting).
//
// Box is the small API the other features use: Deposit, Messages,
// Counts, Message, Audio, MarkSaved, Delete, MarkUploaded (which frees the
// audio), Pending, Subscribe. Shared reads go through the store's Reader;
// the sharing with the cluster is the node's (a sharer over
// LocalVoicemailSince, told of every write by Box's persisted hook).
// Replicator keeps a copy of every message's audio on every node until
// the cloud took it (fetched from the recording node, else any member).
//
// It must never speak SIP or RTP (package calls answers the caller and
// the ivr endpoint hands it audio), never write the replicated table, and
// never keep a message's state in memory beside the store.
package voicemail
