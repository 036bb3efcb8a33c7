"""Ways in: each proves the first factor and hands the sign-in on
(``login/steps/first_factor.py`` lists them)."""
