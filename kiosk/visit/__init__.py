"""The customer's visit: sessions, the cart and checkout attempt, and the purchase service that takes the payment."""
