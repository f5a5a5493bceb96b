-- Company shown next to each contact and searchable in the contact list.
ALTER TABLE contacts ADD COLUMN company text;
