"""Human annotation: the store (users, projects, items, assignments, responses, audit),
question types, assignment and the web app built on them."""
