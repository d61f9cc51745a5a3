-- Who owns reservation $1 (the permission check of the routes that name one).
SELECT user_id AS owner_id FROM reservations WHERE id = $1
