package account

// Data the generator draws from. Numbers it makes are in fictional ranges:
// 555 exchanges in the US, 020 7946 0xxx in the UK.

type genCity struct {
	slug, city, region, areaCode, timezone, postal, street string
}

var genCities = []genCity{
	{"sfo", "San Francisco", "CA", "415", "America/Los_Angeles", "94105", "Market St"},
	{"nyc", "New York", "NY", "212", "America/New_York", "10001", "Broadway"},
	{"chi", "Chicago", "IL", "312", "America/Chicago", "60601", "Wacker Dr"},
	{"aus", "Austin", "TX", "512", "America/Chicago", "78701", "Congress Ave"},
	{"sea", "Seattle", "WA", "206", "America/Los_Angeles", "98101", "Pine St"},
	{"bos", "Boston", "MA", "617", "America/New_York", "02108", "Tremont St"},
	{"den", "Denver", "CO", "303", "America/Denver", "80202", "Larimer St"},
	{"atl", "Atlanta", "GA", "404", "America/New_York", "30303", "Peachtree St"},
	{"mia", "Miami", "FL", "305", "America/New_York", "33131", "Brickell Ave"},
	{"phx", "Phoenix", "AZ", "602", "America/Phoenix", "85004", "Van Buren St"},
	{"lax", "Los Angeles", "CA", "213", "America/Los_Angeles", "90012", "Spring St"},
	{"dfw", "Dallas", "TX", "214", "America/Chicago", "75201", "Elm St"},
	{"hou", "Houston", "TX", "713", "America/Chicago", "77002", "Main St"},
	{"phl", "Philadelphia", "PA", "215", "America/New_York", "19107", "Chestnut St"},
	{"msp", "Minneapolis", "MN", "612", "America/Chicago", "55401", "Nicollet Mall"},
	{"dtw", "Detroit", "MI", "313", "America/Detroit", "48226", "Woodward Ave"},
	{"pdx", "Portland", "OR", "503", "America/Los_Angeles", "97204", "Morrison St"},
	{"slc", "Salt Lake City", "UT", "801", "America/Denver", "84111", "State St"},
	{"bna", "Nashville", "TN", "615", "America/Chicago", "37203", "Broadway"},
	{"clt", "Charlotte", "NC", "704", "America/New_York", "28202", "Tryon St"},
	{"pit", "Pittsburgh", "PA", "412", "America/New_York", "15222", "Liberty Ave"},
	{"stl", "St. Louis", "MO", "314", "America/Chicago", "63101", "Olive St"},
	{"mci", "Kansas City", "MO", "816", "America/Chicago", "64105", "Grand Blvd"},
	{"san", "San Diego", "CA", "619", "America/Los_Angeles", "92101", "Harbor Dr"},
	{"las", "Las Vegas", "NV", "702", "America/Los_Angeles", "89101", "Fremont St"},
	{"cmh", "Columbus", "OH", "614", "America/New_York", "43215", "High St"},
	{"ind", "Indianapolis", "IN", "317", "America/Indiana/Indianapolis", "46204", "Meridian St"},
	{"bwi", "Baltimore", "MD", "410", "America/New_York", "21202", "Charles St"},
	{"rdu", "Raleigh", "NC", "919", "America/New_York", "27601", "Fayetteville St"},
	{"anc", "Anchorage", "AK", "907", "America/Anchorage", "99501", "4th Ave"},
	{"hnl", "Honolulu", "HI", "808", "Pacific/Honolulu", "96813", "Bishop St"},
	{"mke", "Milwaukee", "WI", "414", "America/Chicago", "53202", "Water St"},
	{"cle", "Cleveland", "OH", "216", "America/New_York", "44113", "Euclid Ave"},
	{"smf", "Sacramento", "CA", "916", "America/Los_Angeles", "95814", "Capitol Mall"},
	{"abq", "Albuquerque", "NM", "505", "America/Denver", "87102", "Central Ave"},
	{"boi", "Boise", "ID", "208", "America/Boise", "83702", "Idaho St"},
	{"oma", "Omaha", "NE", "402", "America/Chicago", "68102", "Farnam St"},
	{"msy", "New Orleans", "LA", "504", "America/Chicago", "70112", "Canal St"},
	{"tpa", "Tampa", "FL", "813", "America/New_York", "33602", "Kennedy Blvd"},
	{"cvg", "Cincinnati", "OH", "513", "America/New_York", "45202", "Vine St"},
}

// genExternalArea is an area code no generated site uses: forwarding
// targets outside the account are drawn from +1 202 555 01xx.
const genExternalArea = "202"

var genFirstNames = []string{
	"Aaron", "Abigail", "Adam", "Aisha", "Alan", "Alice", "Amir", "Ana", "Andrew", "Angela",
	"Arjun", "Ava", "Ben", "Bianca", "Bob", "Brian", "Carla", "Carlos", "Carol", "Chen",
	"Chloe", "Chris", "Dana", "Daniel", "Dave", "Diana", "Diego", "Dmitri", "Elena", "Eli",
	"Emily", "Emma", "Erin", "Ethan", "Fatima", "Felix", "Fiona", "Frank", "Gabriel", "Grace",
	"Hana", "Hannah", "Harold", "Hiro", "Ian", "Ines", "Isaac", "Ivy", "Jack", "Jamal",
	"James", "Jane", "Jasmine", "Jin", "Joe", "Julia", "Kai", "Karen", "Kate", "Kenji",
	"Laura", "Leo", "Liam", "Lin", "Lucia", "Luis", "Maria", "Mark", "Maya", "Mei",
	"Mia", "Mohammed", "Nadia", "Nate", "Nina", "Noah", "Olga", "Omar", "Oscar", "Paul",
	"Priya", "Quinn", "Rachel", "Raj", "Rosa", "Ruth", "Sam", "Sara", "Sean", "Sofia",
	"Tara", "Tom", "Uma", "Victor", "Wei", "Wendy", "Xavier", "Yara", "Yusuf", "Zoe",
}

var genLastNames = []string{
	"Adams", "Ahmed", "Alvarez", "Anderson", "Baker", "Banerjee", "Bauer", "Brown", "Campbell", "Chen",
	"Clark", "Cohen", "Cruz", "Davis", "Diaz", "Dubois", "Edwards", "Evans", "Fischer", "Flores",
	"Foster", "Garcia", "Gonzalez", "Green", "Gupta", "Hall", "Harris", "Hernandez", "Hill", "Huang",
	"Ito", "Jackson", "Jensen", "Johnson", "Jones", "Kaur", "Khan", "Kim", "King", "Kowalski",
	"Kumar", "Lee", "Lewis", "Li", "Lopez", "Martin", "Martinez", "Meyer", "Miller", "Moore",
	"Morales", "Murphy", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Ortiz", "Park", "Patel",
	"Perez", "Petrov", "Price", "Quinn", "Ramirez", "Reed", "Reyes", "Rivera", "Roberts", "Robinson",
	"Rossi", "Sanchez", "Santos", "Schmidt", "Scott", "Shah", "Silva", "Singh", "Smith", "Sato",
	"Taylor", "Thomas", "Thompson", "Torres", "Tran", "Turner", "Walker", "Wang", "Ward", "Weber",
	"White", "Williams", "Wilson", "Wong", "Wright", "Wu", "Yamamoto", "Young", "Zhang", "Zimmerman",
}

var genDepartments = []string{
	"Sales", "Support", "Billing", "Front Desk", "Operator", "IT Help Desk", "Shipping",
	"Human Resources", "Facilities", "Accounts Payable", "Customer Care", "Dispatch",
	"Security", "Reception", "Service", "Warehouse", "Legal", "Marketing", "Parts", "Returns",
}

var genCodecSets = [][]string{
	{"PCMU", "PCMA", "telephone-event"},
	{"G722", "PCMU", "PCMA", "telephone-event"},
	{"opus", "G722", "PCMU", "telephone-event"},
	{"PCMU", "G729", "telephone-event"},
}
