-- A call's transcript lines are log entries too: `speech` holds what a final utterance adds to
-- its entry (speaker, times, words, emotion, sentiment) as JSON text. Portable SQL.

ALTER TABLE session_messages ADD COLUMN speech TEXT;
