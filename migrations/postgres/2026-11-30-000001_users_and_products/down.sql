DROP TABLE products;
DROP TABLE users;
