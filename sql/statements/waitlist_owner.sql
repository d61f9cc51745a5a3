-- Who owns waiting-list entry $1 (the permission check of the routes that name one).
SELECT user_id AS owner_id FROM waitlist WHERE id = $1
